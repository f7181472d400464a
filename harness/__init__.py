"""harness/__init__.py"""
