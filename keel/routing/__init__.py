"""Routing rules as pure functions, shared by workflows and activities."""
