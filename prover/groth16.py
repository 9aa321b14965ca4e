"""The Groth16 prover (arkworks' `prover`): a proof from a proving key and a satisfying witness.

    A = alpha + sum_i w_i A_i(tau) + r delta                         (G1)
    B = beta  + sum_i w_i B_i(tau) + s delta                         (G2, and in G1 for C)
    C = sum_{private i} w_i L_i + sum_k h_k H_k + s A + r B_G1 - r s delta   (G1)
with h from `prover.qap` (arkworks' LibsnarkReduction) and the zero-knowledge randomisers r, s
drawn from `secrets`.

The witness is checked against the key's constraints first: a false statement raises
`UnsatisfiedConstraint` instead of producing a proof that would not verify.

The multi-scalar multiplications and the QAP's NTTs run on a proving backend (prover/backends.py:
py_ecc, the reference, or mcl with prover/_native.c); the key's bases are prepared for it once and
cached on the key.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from typing import Sequence

from prover.backends import ProverBackend, get_prover_backend
from prover.ec import get_arith
from prover.qap import compute_abc_evaluations
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint
from prover.setup import InvalidProvingKey, PreparedQueries, ProvingKey
from verifier.groth16 import Proof


class InvalidWitness(ValueError):
    """The witness does not have the shape the proving key expects."""


def get_witness(pk: ProvingKey, cs_or_witness: ConstraintSystem | Sequence[int]) -> list[int]:
    """The full assignment (wire 0 = 1, publics, privates), checked against the key's shape."""
    r = pk.curve.r
    if isinstance(cs_or_witness, ConstraintSystem):
        # a circuit over another field cannot match this key
        if cs_or_witness.curve.r != r:
            raise InvalidWitness(f"circuit is over {cs_or_witness.curve.name}, proving key over {pk.curve.name}")
        witness = cs_or_witness.witness
    else:
        witness = list(cs_or_witness)
    # one value per wire of the circuit the key was made for
    if len(witness) != pk.n_vars:
        raise InvalidWitness(f"witness has {len(witness)} values, the circuit has {pk.n_vars} wires")
    # wire 0 is the constant one
    if witness[0] != 1:
        raise InvalidWitness(f"witness[0] must be 1 (the constant wire), got {witness[0]}")
    for i, value in enumerate(witness):
        # every value is a reduced field element
        if not isinstance(value, int) or not 0 <= value < r:
            raise InvalidWitness(f"witness value {i} is not a field element in [0, r): {value}")
    return witness


def get_randomisers(r: int, rng: random.Random | None, reproducible_seed: int | bytes | str | None) -> tuple[int, int]:
    """The zero-knowledge randomisers (r, s) in [1, r).

    Default: the OS's CSPRNG (`secrets`). `rng` (any object with randrange) or `reproducible_seed`
    are for TESTS ONLY: the same (r, s) on two proofs with different witnesses leaks information.
    """
    # one source of randomness at a time
    if rng is not None and reproducible_seed is not None:
        raise ValueError("give either rng or reproducible_seed, not both")
    if reproducible_seed is not None:
        seed = reproducible_seed if isinstance(reproducible_seed, bytes) else str(reproducible_seed).encode()
        values = []
        for label in (b"r", b"s"):
            digest = hashlib.sha512(b"groth16-prover-randomiser|" + label + b"|" + seed).digest()
            values.append(int.from_bytes(digest, "big") % (r - 1) + 1)
        return values[0], values[1]
    if rng is not None:
        return rng.randrange(1, r), rng.randrange(1, r)
    return secrets.randbelow(r - 1) + 1, secrets.randbelow(r - 1) + 1


def check_evaluations(a: list[int], b: list[int], c: list[int], n_constraints: int, r: int) -> None:
    """Raise UnsatisfiedConstraint for the first row where <A, w> * <B, w> != <C, w>."""
    for index in range(n_constraints):
        if a[index] * b[index] % r != c[index]:
            raise UnsatisfiedConstraint(index, "", a[index], b[index], c[index])


def get_prepared_queries(pk: ProvingKey, backend: ProverBackend) -> PreparedQueries:
    """The key's fixed bases in the backend's form, converted once per key and backend."""
    prepared = pk.prepared.get(backend.name)
    # a key loaded for one backend has no points left for another
    if prepared is None and pk.only_prepared is not None:
        raise InvalidProvingKey(f"this proving key was loaded for backend {pk.only_prepared} only, not {backend.name}: load it again")
    if prepared is None:
        g1 = get_arith(pk.curve, 1)
        g2 = get_arith(pk.curve, 2)
        prepared = pk.prepared[backend.name] = PreparedQueries(
            a=backend.prepare(g1, [pk.get_affine("alpha_g1"), pk.delta_g1, *pk.a_query]),
            b_g1=backend.prepare(g1, [pk.beta_g1, pk.delta_g1, *pk.b_g1_query]),
            b_g2=backend.prepare(g2, [pk.get_affine("beta_g2"), pk.get_affine("delta_g2"), *pk.b_g2_query]),
            l=backend.prepare(g1, pk.l_query),
            h=backend.prepare(g1, pk.h_query),
        )
    return prepared


def prove(pk: ProvingKey, cs_or_witness: ConstraintSystem | Sequence[int], *, rng: random.Random | None = None,
          reproducible_seed: int | bytes | str | None = None, timings: dict[str, float] | None = None,
          backend: str | ProverBackend | None = None) -> Proof:
    """A Groth16 proof that the witness satisfies the key's circuit.

    `backend`: a name from prover/backends.py (default: the configured or fastest installed one).

    `timings`, if given, receives this process's CPU seconds per phase (CPU, not wall time, because
    the machines it is measured on are shared): check (evaluating every constraint on the witness),
    qap (the NTTs), msm_a, msm_b1, msm_b2, msm_l, msm_h.
    """
    clock = _Clock(timings)
    curve = pk.curve
    r = curve.r
    chosen = get_prover_backend(backend, curve)
    witness = get_witness(pk, cs_or_witness)
    domain = pk.domain
    a_evals, b_evals, c_evals = compute_abc_evaluations(pk.constraints, witness, pk.n_public, domain)
    check_evaluations(a_evals, b_evals, c_evals, pk.n_constraints, r)
    clock.lap("check")
    h = chosen.compute_h(a_evals, b_evals, c_evals, domain)
    clock.lap("qap")
    rr, ss = get_randomisers(r, rng, reproducible_seed)
    g1 = get_arith(curve, 1)
    g2 = get_arith(curve, 2)
    queries = get_prepared_queries(pk, chosen)
    clock.lap("prepare")
    a = chosen.msm(g1, queries.a, [1, rr, *witness])
    clock.lap("msm_a")
    b1 = chosen.msm(g1, queries.b_g1, [1, ss, *witness])
    clock.lap("msm_b1")
    b2 = chosen.msm(g2, queries.b_g2, [1, ss, *witness])
    clock.lap("msm_b2")
    c_l = chosen.msm(g1, queries.l, witness[pk.n_public + 1:])
    clock.lap("msm_l")
    c_h = chosen.msm(g1, queries.h, h)
    # C = L + H + s A + r B1 - r s delta
    c = chosen.msm(g1, chosen.prepare(g1, [c_l, c_h, a, b1, pk.delta_g1]), [1, 1, ss, rr, (-rr * ss) % r])
    clock.lap("msm_h")
    return Proof(a=g1.to_py_ecc(a), b=g2.to_py_ecc(b2), c=g1.to_py_ecc(c), curve=curve)


class _Clock:
    """Accumulates CPU time per phase into a caller's dict (or does nothing)."""

    def __init__(self, sink: dict[str, float] | None):
        self.sink = sink
        self.last = time.process_time()

    def lap(self, name: str) -> None:
        now = time.process_time()
        if self.sink is not None:
            self.sink[name] = self.sink.get(name, 0.0) + now - self.last
        self.last = now
