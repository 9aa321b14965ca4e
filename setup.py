"""Builds the optional C extension prover._native (prover/_native.c); the rest of the project is in pyproject.toml.

Optional: a machine without a C compiler still installs, and prover/native.py falls back to Python.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("prover._native", ["prover/_native.c"], optional=True, extra_compile_args=["-O3"])])
