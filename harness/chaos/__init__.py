"""A randomized fault suite: real processes, faults at seeded moments, invariants checked.

`python -m harness.chaos` starts the dev server, workers, the ticket service and a scripted
model endpoint, runs incident sagas, research flows and team runs, breaks things at
moments drawn from each seed (kill -9, server restart, cancel, reject, a model
endpoint that refuses, hangs or hangs up, a slow ticket service) and then checks
the promises the project makes against the service's database and the histories.
A seed's schedule depends on the seed alone, so a failure is replayed with
`python -m harness.chaos --seed N`.
"""
