"""Helpers for tests/test_browser.py: the book's table of contents and one visit of a page."""
