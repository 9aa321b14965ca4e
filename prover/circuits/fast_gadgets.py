"""A faster `range_check` with the same constraints as `prover.gadgets.range_check`.

Range checks are most of a segment circuit (the margin check alone is 2 x (n_scenarios + 1) of
them per slot), and building them through linear-combination arithmetic dominates witness
generation. This builds the same n_bits + 1 constraints (bits boolean, their packing equals x)
from prepared term dictionaries. `prover.gadgets.range_check` stays the reference; the tests run
one suite over both and compare the constraint systems.
"""

from __future__ import annotations

from prover.gadgets import to_signed
from prover.r1cs import ONE_WIRE, ConstraintSystem, LinearLike, WitnessError


def range_check_fast(cs: ConstraintSystem, x: LinearLike, n_bits: int) -> None:
    """Prove 0 <= x < 2^n_bits: same constraints as `prover.gadgets.range_check`."""
    # the bits must fit in the field, or the decomposition would not be unique
    if not 0 < n_bits < cs.r.bit_length() - 1:
        raise ValueError(f"bit width must be between 1 and {cs.r.bit_length() - 2}, got {n_bits}")
    target = cs.as_lc(x)
    value = target.value
    # a value outside the range has no n-bit decomposition
    if value >> n_bits:
        raise WitnessError(f"value {to_signed(cs, value)} does not fit in {n_bits} bits (must be in [0, 2^{n_bits}))")
    minus_one = cs.r - 1
    packed: dict[int, int] = {}
    with cs.gadget("range_check"):
        with cs.gadget("boolean"):
            for i in range(n_bits):
                bit = cs.private((value >> i) & 1)
                # bit * (1 - bit) = 0
                cs.enforce_terms({bit.wire: 1}, {ONE_WIRE: 1, bit.wire: minus_one}, {})
                packed[bit.wire] = 1 << i
        cs.enforce_terms(packed, {ONE_WIRE: 1}, dict(target.terms))
