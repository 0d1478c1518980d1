"""Only the optional C accelerator: everything else is in pyproject.toml.

``optional=True``: without a C compiler the build goes on, and the engine uses its Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pytest_mcpswarm.load._replies",
            ["pytest_mcpswarm/load/_replies.c"],
            optional=True,
        )
    ]
)
