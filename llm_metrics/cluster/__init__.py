"""A distributed run's health: which workers took part, their deltas and the version check."""
