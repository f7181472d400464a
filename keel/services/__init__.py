"""keel/services/__init__.py"""
