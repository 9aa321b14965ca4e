"""Verification backends: the group operations a Groth16 check spends its time in, behind one API.

A backend does four things on py_ecc points: prepare fixed G1 bases (a key's IC points) once,
a G1 multi-scalar multiplication over them, a product of pairings (Miller loops sharing one
accumulator, one final exponentiation) returning a GT value that compares with == and
exponentiates with **, and the order-r subgroup check. Everything else a verifier checks (input
counts, scalars < r, coordinates in the field, the curve equation) stays in verifier/groth16.py
and runs the same whatever the backend.

- `py_ecc`: the reference, pure Python (verifier/jacobian.py and verifier/pairing.py on py_ecc's
  constants and formulas); runs everywhere and on both curves.
- `mcl`: mcl (C++) through mclbn256, checked against py_ecc when it loads (verifier/mcl.py);
  BN254 only.

The choice: an explicit name, else `set_default_backend`'s (the CLI's --backend), else the
environment variable ROLLUP_BACKEND, else the fastest installed. A named backend that is not
installed is an error, never a silent fallback; the automatic choice falls back to py_ecc for a
curve the fast one lacks (BLS12-381).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Protocol, Sequence

from verifier import mcl as mcl_binding
from verifier.curve import BN254, Curve, Point

ENV_VAR = "ROLLUP_BACKEND"
REFERENCE = "py_ecc"


class BackendError(ValueError):
    """An unknown backend name, or a backend that is not installed or cannot serve this curve."""


class Backend(Protocol):
    name: str

    def supports(self, curve: Curve) -> bool: ...

    def prepare_g1(self, curve: Curve, points: Sequence[Point]) -> Any: ...

    def msm_g1(self, curve: Curve, bases: Any, scalars: Sequence[int]) -> Point: ...

    def pairing_product(self, curve: Curve, pairs: Sequence[tuple[Point, Point]]) -> Any: ...

    def is_in_subgroup(self, curve: Curve, point: Point, group: int) -> bool: ...


class PyEccBackend:
    """The reference: pure Python over py_ecc's fields and formulas."""

    name = REFERENCE

    def supports(self, curve: Curve) -> bool:
        return True

    def prepare_g1(self, curve: Curve, points: Sequence[Point]) -> Any:
        return tuple(points)

    def msm_g1(self, curve: Curve, bases: Any, scalars: Sequence[int]) -> Point:
        return curve.msm(bases, scalars)

    def pairing_product(self, curve: Curve, pairs: Sequence[tuple[Point, Point]]) -> Any:
        return curve.final_exponentiate(curve.multi_miller_loop(list(pairs)))

    def is_in_subgroup(self, curve: Curve, point: Point, group: int) -> bool:
        return curve.is_in_subgroup_fast(point, group)


class MclBackend:
    """mcl on BN254 (verifier/mcl.py); loaded and checked against py_ecc on first use."""

    name = "mcl"

    @property
    def mcl(self) -> mcl_binding.Mcl:
        try:
            return mcl_binding.load()
        except mcl_binding.MclUnavailable as exc:
            raise BackendError(f"backend mcl is not available: {exc} (pip install mclbn256)") from None

    def supports(self, curve: Curve) -> bool:
        return curve.name == BN254.name

    def _check_curve(self, curve: Curve) -> None:
        # mcl here is initialised on BN254 only
        if not self.supports(curve):
            raise BackendError(f"backend mcl computes on BN254 only, not {curve.name}")

    def prepare_g1(self, curve: Curve, points: Sequence[Point]) -> Any:
        self._check_curve(curve)
        return self.mcl.g1_array([to_affine_g1(curve, p) for p in points])

    def msm_g1(self, curve: Curve, bases: Any, scalars: Sequence[int]) -> Point:
        self._check_curve(curve)
        if not isinstance(bases, ctypes.Array):  # py_ecc points, not prepared
            bases = self.prepare_g1(curve, bases)
        return from_affine_g1(curve, self.mcl.msm_g1(bases, [k % curve.r for k in scalars]))

    def pairing_product(self, curve: Curve, pairs: Sequence[tuple[Point, Point]]) -> Any:
        self._check_curve(curve)
        return self.mcl.pairing_product([to_affine_g1(curve, p) for p, _ in pairs], [to_affine_g2(curve, q) for _, q in pairs])

    def is_in_subgroup(self, curve: Curve, point: Point, group: int) -> bool:
        self._check_curve(curve)
        if group == 1:
            return self.mcl.is_in_subgroup_g1(to_affine_g1(curve, point))
        return self.mcl.is_in_subgroup_g2(to_affine_g2(curve, point))


# --- py_ecc points <-> raw-int affine points (the form verifier/mcl.py takes) ---
def to_affine_g1(curve: Curve, point: Point) -> tuple[int, int] | None:
    if curve.is_inf(point):
        return None
    x, y = curve.normalize(point)
    return (int(x), int(y))


def to_affine_g2(curve: Curve, point: Point) -> tuple[tuple[int, int], tuple[int, int]] | None:
    if curve.is_inf(point):
        return None
    x, y = curve.normalize(point)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))


def from_affine_g1(curve: Curve, point: tuple[int, int] | None) -> Point:
    if point is None:
        return curve.Z1
    return (curve.FQ(point[0]), curve.FQ(point[1]), curve.FQ(1))


# --- choosing one ---
BACKENDS: dict[str, Backend] = {"py_ecc": PyEccBackend(), "mcl": MclBackend()}
FASTEST_FIRST = ("mcl", "py_ecc")
_default: str | None = None


def is_installed(name: str) -> bool:
    """True if backend `name` loads here (and, for mcl, passed its checks against py_ecc)."""
    if name == "mcl":
        return mcl_binding.is_available()
    return name in BACKENDS


def list_installed() -> list[str]:
    return [name for name in FASTEST_FIRST if is_installed(name)]


def check_backend_name(name: str) -> str:
    """`name`, if it is a known backend that is installed here; else BackendError."""
    # one of the known backends
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    # and usable on this machine
    if not is_installed(name):
        BACKENDS[name].mcl  # type: ignore[attr-defined]  # raises BackendError with the reason
    return name


def set_default_backend(name: str | None) -> None:
    """The process-wide choice (the CLI's --backend); None returns to ROLLUP_BACKEND / fastest."""
    global _default
    _default = None if name is None else check_backend_name(name)


def get_default_backend() -> str | None:
    """The name set by `set_default_backend`, if any."""
    return _default


def get_backend_name(name: str | None = None) -> str | None:
    """The explicitly chosen name (argument, set_default_backend, ROLLUP_BACKEND), or None for automatic."""
    chosen = name or _default or os.environ.get(ENV_VAR) or None
    return None if chosen is None else check_backend_name(chosen)


def get_backend(name: str | Backend | None = None, curve: Curve = BN254) -> Backend:
    """The backend for `curve`: `name` if given (it must support the curve), else the configured
    one (set_default_backend, ROLLUP_BACKEND) or the fastest installed, falling back to the
    reference for a curve the configured one lacks."""
    if name is not None:
        backend = BACKENDS[check_backend_name(name)] if isinstance(name, str) else name
        # an explicit choice must fit the curve: no silent change of backend
        if not backend.supports(curve):
            raise BackendError(f"backend {backend.name} does not support {curve.name}")
        return backend
    configured = get_backend_name()
    candidates = [configured] if configured is not None else list_installed()
    return next((BACKENDS[n] for n in candidates if BACKENDS[n].supports(curve)), BACKENDS[REFERENCE])
