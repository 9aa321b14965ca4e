"""Groth16 verification (arkworks-style): data structures, prepared key, input preparation, checks.

Data structures carry the paper's names. Malformed input raises `MalformedInput` (a ValueError)
with a specific reason; a well-formed proof that does not verify returns False.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.curve import BN254, Curve, Point


@dataclass(frozen=True)
class Proof:
    a: Point  # G1
    b: Point  # G2
    c: Point  # G1
    curve: Curve = BN254


@dataclass(frozen=True)
class VerifyingKey:
    alpha_g1: Point
    beta_g2: Point
    gamma_g2: Point
    delta_g2: Point
    gamma_abc_g1: tuple[Point, ...]  # len == number of public inputs + 1
    curve: Curve = BN254

    @property
    def n_public(self) -> int:
        return len(self.gamma_abc_g1) - 1
