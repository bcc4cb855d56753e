"""Tools for testing machines: the XState oracle, hypothesis strategies, paths."""
