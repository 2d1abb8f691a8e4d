"""Lesson code: what the chapters teach and call, one module per topic. Each module's docstring opens
with the notebook it serves (tests/unit/test_layout.py checks it)."""
