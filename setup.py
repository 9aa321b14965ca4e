"""Builds the optional C extensions prover._native (prover/_native.c) and verifier._poseidon
(verifier/_poseidon.c); the rest of the project is in pyproject.toml.

Optional: a machine without a C compiler still installs, and prover/native.py and
verifier/poseidon.py fall back to Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("prover._native", ["prover/_native.c"], optional=True, extra_compile_args=["-O3"]),
        Extension("verifier._poseidon", ["verifier/_poseidon.c"], optional=True, extra_compile_args=["-O3"]),
    ]
)
