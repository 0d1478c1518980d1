"""Fixtures and defaults for this repository's own benchmarks/ (the plugin itself loads via its entry point)."""
