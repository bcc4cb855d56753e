"""Running machines: actors, clocks, invoked services."""
