"""keel/__init__.py"""
