"""The project's own tests use the fixtures it publishes as a pytest plugin (rollup.testing)."""

import pytest

from verifier.backends import BACKENDS, is_installed


def get_backend_params() -> list:
    """Every proving/verification backend, skipped where it is not installed (the suite must also
    pass with py_ecc alone)."""
    return [
        pytest.param(name, marks=pytest.mark.skipif(not is_installed(name), reason=f"backend {name} is not installed"))
        for name in BACKENDS
    ]


@pytest.fixture(scope="module", params=get_backend_params())
def backend_name(request: pytest.FixtureRequest) -> str:
    """One run of the test per backend (verifier/backends.py): the suites that use it are the
    same for the reference and the native implementation."""
    return request.param
