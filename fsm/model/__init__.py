"""The compiled model: state nodes and transitions, built once per definition."""
