"""Tools for testing machines and code that uses them: hypothesis strategies, event paths
and coverage, model-based tests, static analysis, and the XState oracle."""
