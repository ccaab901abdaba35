"""A third-party scorecard plugin, as docs/plugins.md shows it (tests/test_docs.py checks the
doc's copy is this code)."""
