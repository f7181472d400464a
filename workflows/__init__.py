"""Workflow definitions: deterministic orchestration only, no I/O."""
