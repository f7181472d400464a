"""keel/rules/__init__.py"""
