"""Everything that touches the world: model runtimes, stores, tools.

Each activity is a thin adapter over a plain class that tests use directly.
"""
