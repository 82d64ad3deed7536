"""Build hook for the optional C kernel of ``primo analyze`` (everything else is in pyproject.toml).

The extension is optional: without a C compiler primo installs and runs the same analysis in
numpy, only slower (``python -c "import primo.reads._fastreads"`` tells whether it was built).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("primo.reads._fastreads", sources=["primo/reads/_fastreads.c"],
                  extra_compile_args=["-O3"], optional=True),
    ],
)
