"""The pure core: the statechart step function and the values it produces."""
