"""Fixtures and defaults for this repository's own benchmarks/.

The plugin itself is loaded by its pytest11 entry point, never from here.
"""
