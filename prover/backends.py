"""Proving backends: the prover's and the setup's heavy arithmetic behind one API.

A backend does three things, on raw-int affine points (`prover.ec`) and ints mod r:
- `prepare` a proving key's fixed bases once (cached on the key per backend) and `msm`: sum k_i P_i
  over them, in G1 or G2 (the proof);
- `compute_h`: the QAP's quotient h = (A B - C) / Z from the evaluations of A, B, C (the proof's
  seven NTTs, prover/qap.py's `compute_h_from_evaluations`);
- `fixed_base_muls`: k * G for many k and one generator G (the setup's every query point).
The names, the choice (explicit, --backend, ROLLUP_BACKEND, else the fastest installed) and the
availability checks are verifier/backends.py's, so a prover and a verifier configured alike use
the same one.

- `py_ecc`: the reference, pure Python (Pippenger in `prover.msm`, the NTTs of `prover.qap`,
  the windowed tables of `prover.ec`) on py_ecc's constants;
- `mcl`: mcl through verifier/mcl.py (checked against py_ecc when it loads) for the group
  operations, and the hand-written C extension prover/_native.c (prover/native.py) for the NTTs
  and the batching of fixed-base products; if the extension is not built, the NTTs fall back to
  prover.qap and the fixed-base products to one mcl multiplication each. BN254 only.

Every backend gives the same points and the same h, so a key made with the same toxic waste is the
same key, and a proof made with a fixed `reproducible_seed` the same proof, whatever the backend.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Protocol, Sequence

from prover import native
from prover.ec import Affine, Arith, compute_fixed_base_muls
from prover.msm import compute_msm_affine
from prover.qap import Domain, compute_h_from_evaluations
from verifier import backends as verifier_backends
from verifier import mcl as mcl_binding
from verifier.curve import BN254, Curve


class ProverBackend(Protocol):
    name: str

    def prepare(self, arith: Arith, points: Sequence[Affine]) -> Any: ...

    def msm(self, arith: Arith, bases: Any, scalars: Sequence[int]) -> Affine: ...

    def compute_h(self, a: list[int], b: list[int], c: list[int], domain: Domain) -> list[int]: ...

    def fixed_base_muls(self, arith: Arith, base: Affine, scalars: Sequence[int]) -> list[Affine]: ...

    def prepare_section(self, arith: Arith, prefix: Sequence[Affine], section: memoryview,
                        parse: Callable[[memoryview], list[Affine]]) -> Any: ...


class PyEccProver:
    """The reference: signed-digit Pippenger on raw ints (prover/msm.py), NTTs in prover/qap.py."""

    name = verifier_backends.REFERENCE

    def prepare(self, arith: Arith, points: Sequence[Affine]) -> Any:
        return list(points)

    def msm(self, arith: Arith, bases: Any, scalars: Sequence[int]) -> Affine:
        return arith.to_affine(compute_msm_affine(arith, bases, scalars))

    def compute_h(self, a: list[int], b: list[int], c: list[int], domain: Domain) -> list[int]:
        return compute_h_from_evaluations(a, b, c, domain)

    def fixed_base_muls(self, arith: Arith, base: Affine, scalars: Sequence[int]) -> list[Affine]:
        return compute_fixed_base_muls(arith, base, scalars, arith.curve.r.bit_length())

    def prepare_section(self, arith: Arith, prefix: Sequence[Affine], section: memoryview,
                        parse: Callable[[memoryview], list[Affine]]) -> Any:
        """`prepare` of prefix + the points of a key file's section (`parse` reads and checks them)."""
        return self.prepare(arith, [*prefix, *parse(section)])


class MclProver:
    """mcl's multi-scalar and scalar multiplications (verifier/mcl.py), NTTs in prover/_native.c."""

    name = "mcl"

    def __init__(self, use_extension: bool = True):
        # False: what a machine without a C compiler runs (tests use it to cover the fallbacks)
        self.use_extension = use_extension

    @property
    def mcl(self) -> Any:
        return verifier_backends.BACKENDS["mcl"].mcl  # type: ignore[attr-defined]

    @property
    def native(self) -> bool:
        return self.use_extension and native.is_available()

    def prepare(self, arith: Arith, points: Sequence[Affine]) -> Any:
        return self.mcl.g1_array(points) if arith.group == 1 else self.mcl.g2_array(points)

    def msm(self, arith: Arith, bases: Any, scalars: Sequence[int]) -> Affine:
        return self.mcl.msm_g1(bases, scalars) if arith.group == 1 else self.mcl.msm_g2(bases, scalars)

    def compute_h(self, a: list[int], b: list[int], c: list[int], domain: Domain) -> list[int]:
        if self.native:
            return native.compute_h_from_evaluations(a, b, c, domain)
        return compute_h_from_evaluations(a, b, c, domain)

    def fixed_base_muls(self, arith: Arith, base: Affine, scalars: Sequence[int]) -> list[Affine]:
        mcl = self.mcl
        for k in scalars:
            # mcl reads reduced scalars: a larger one would be silently taken mod r
            if not 0 <= k < mcl.r:
                raise ValueError(f"scalar {k} is outside [0, r)")
        if self.native:
            return native.compute_fixed_base_muls_mcl(mcl, arith.group, base, scalars, mcl.r.bit_length())
        return mcl.mul_each(arith.group, base, scalars)

    def prepare_section(self, arith: Arith, prefix: Sequence[Affine], section: memoryview,
                        parse: Callable[[memoryview], list[Affine]]) -> Any:
        """mcl's array of prefix + a key file section's points, converted and checked in C when the
        extension is built (no Python int per coordinate), else through `parse`."""
        if not self.native:
            return self.prepare(arith, [*prefix, *parse(section)])
        data = native.load_mcl_points(self.mcl, arith.group, section, prefix=bytes(self.prepare(arith, prefix)))
        struct = mcl_binding.G1Struct if arith.group == 1 else mcl_binding.G2Struct
        return (struct * (len(data) // ctypes.sizeof(struct))).from_buffer(data)


PROVER_BACKENDS: dict[str, ProverBackend] = {"py_ecc": PyEccProver(), "mcl": MclProver()}


def get_prover_backend(name: str | ProverBackend | None = None, curve: Curve = BN254) -> ProverBackend:
    """The proving backend for `curve`, chosen as verifier/backends.py chooses (same names)."""
    if name is not None and not isinstance(name, str):
        return name
    return PROVER_BACKENDS[verifier_backends.get_backend(name, curve).name]
