"""Fixtures and defaults for this repository's own tests and benchmarks/.

The plugin itself is loaded by its pytest11 entry point, never from here;
``pytester`` drives it from the outside in tests/plugin/.
"""

pytest_plugins = ("pytester",)
