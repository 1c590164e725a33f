"""The names of the cells' state modes (no torch: the command line lists them)."""

STATE_MODES = ("carry", "reset", "zero")
