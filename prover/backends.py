"""Proving backends: the prover's multi-scalar multiplications in G1 and G2 behind one API.

A backend prepares a proving key's fixed bases once (`prepare`, cached on the key per backend) and
computes sum k_i P_i over them (`msm`), on raw-int affine points (`prover.ec`). The names, the
choice (explicit, --backend, ROLLUP_BACKEND, else the fastest installed) and the availability
checks are verifier/backends.py's, so a prover and a verifier configured alike use the same one.

- `py_ecc`: the reference, pure Python (Pippenger in `prover.msm` on py_ecc's constants);
- `mcl`: mcl's mulVec through verifier/mcl.py (checked against py_ecc when it loads); BN254 only.

Both give the same points, so a proof made with a fixed `reproducible_seed` is the same proof
whatever the backend.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from prover.ec import Affine, Arith
from prover.msm import compute_msm_affine
from verifier import backends as verifier_backends
from verifier.curve import BN254, Curve


class ProverBackend(Protocol):
    name: str

    def prepare(self, arith: Arith, points: Sequence[Affine]) -> Any: ...

    def msm(self, arith: Arith, bases: Any, scalars: Sequence[int]) -> Affine: ...


class PyEccProver:
    """The reference: signed-digit Pippenger on raw ints (prover/msm.py)."""

    name = verifier_backends.REFERENCE

    def prepare(self, arith: Arith, points: Sequence[Affine]) -> Any:
        return list(points)

    def msm(self, arith: Arith, bases: Any, scalars: Sequence[int]) -> Affine:
        return arith.to_affine(compute_msm_affine(arith, bases, scalars))


class MclProver:
    """mcl's multi-scalar multiplication (verifier/mcl.py)."""

    name = "mcl"

    def prepare(self, arith: Arith, points: Sequence[Affine]) -> Any:
        mcl = verifier_backends.BACKENDS["mcl"].mcl  # type: ignore[attr-defined]
        return mcl.g1_array(points) if arith.group == 1 else mcl.g2_array(points)

    def msm(self, arith: Arith, bases: Any, scalars: Sequence[int]) -> Affine:
        mcl = verifier_backends.BACKENDS["mcl"].mcl  # type: ignore[attr-defined]
        return mcl.msm_g1(bases, scalars) if arith.group == 1 else mcl.msm_g2(bases, scalars)


PROVER_BACKENDS: dict[str, ProverBackend] = {"py_ecc": PyEccProver(), "mcl": MclProver()}


def get_prover_backend(name: str | ProverBackend | None = None, curve: Curve = BN254) -> ProverBackend:
    """The proving backend for `curve`, chosen as verifier/backends.py chooses (same names)."""
    if name is not None and not isinstance(name, str):
        return name
    return PROVER_BACKENDS[verifier_backends.get_backend(name, curve).name]
