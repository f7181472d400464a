"""Contract files: loaded and cross-checked once, served to workflows as a snapshot."""
