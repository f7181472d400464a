"""harness/testing/__init__.py"""
