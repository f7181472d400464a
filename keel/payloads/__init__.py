"""Payload models shared by workflows, activities and the CLI.

They are durable contracts: they are recorded in workflow histories, so fields
are only ever added with defaults, never renamed.
"""
