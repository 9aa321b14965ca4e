"""The Poseidon hash as R1CS, following circomlib's circuits/poseidon.circom (`Poseidon(n)`).

Same algorithm as `verifier.poseidon.poseidon_optimized` (circomlib's circuit and circomlibjs's
`poseidon_opt.js` share it) and the same constants (`verifier.poseidon.PARAMS`). Only the x^5
S-boxes cost constraints (x2 = x*x, x4 = x2*x2, x5 = x4*x: 3 each); additions of constants and the
linear layers (M, P, the sparse S) stay linear combinations, as circom's simplifier leaves them.
Like circom, the S-box of a constant costs nothing: the capacity lane starts as the constant C[0],
so its first S-box is folded. And the output wire takes the place of the last round's lane-0 S-box
output (x4 * x = (out - sum_{j>0} M[j][0] * x5_j) / M[0][0]), so the hash is a Variable without a
constraint of its own. Total: 3 * (8 * t + n_rounds_p - 1) constraints for t = n + 1: 240 for two
inputs, as circomlib's Poseidon(2).

Values are computed next to the constraints with plain ints (evaluating the growing linear
combinations of the partial rounds through the constraint system would cost more than the hash).
"""

from __future__ import annotations

from collections.abc import Sequence

from prover.r1cs import ONE_WIRE, ConstraintSystem, LinearCombination, LinearLike, Variable, WitnessError
from verifier.poseidon import MAX_INPUTS, R, get_params

Terms = dict[int, int]  # internal wire id -> coefficient, as LinearCombination.terms


class _Lane:
    """A state element: a linear combination (terms over the system's internal wire ids) and its value."""

    __slots__ = ("terms", "value")

    def __init__(self, terms: Terms, value: int):
        self.terms = terms
        self.value = value

    @property
    def is_constant(self) -> bool:
        return not self.terms.keys() - {ONE_WIRE}


def count_poseidon_constraints(n_inputs: int) -> int:
    """Constraints `synthesize_poseidon` adds for n_inputs wire inputs (3 per S-box, one S-box folded)."""
    p = get_params(n_inputs)
    return 3 * (p.n_rounds_f * p.t + p.n_rounds_p - 1)


def synthesize_poseidon(cs: ConstraintSystem, inputs: Sequence[LinearLike]) -> Variable:
    """A wire constrained to Poseidon(inputs) (circomlib's `Poseidon(len(inputs))`), 1 <= len <= 16."""
    # circomlib defines Poseidon for 1..16 inputs
    if not 1 <= len(inputs) <= MAX_INPUTS:
        raise ValueError(f"Poseidon takes 1 to {MAX_INPUTS} inputs, got {len(inputs)}")
    # the field of the hash is BN254's scalar field: its constants mean nothing in another
    if cs.r != R:
        raise ValueError("the Poseidon gadget needs a constraint system over BN254's scalar field")
    p = get_params(len(inputs))
    t, half, C, S, M = p.t, p.n_rounds_f // 2, p.C_opt, p.S, p.M_opt
    with cs.gadget("poseidon"):
        state = [_constant(0)] + [_lane(cs, x) for x in inputs]
        state = [_add_constant(lane, C[i]) for i, lane in enumerate(state)]
        for rnd in range(half - 1):
            state = _mix([_add_constant(_sbox(cs, lane), C[(rnd + 1) * t + i]) for i, lane in enumerate(state)], M)
        state = _mix([_add_constant(_sbox(cs, lane), C[half * t + i]) for i, lane in enumerate(state)], p.P)
        base = (half + 1) * t
        for rnd in range(p.n_rounds_p):
            row = S[(2 * t - 1) * rnd : (2 * t - 1) * (rnd + 1)]
            s0 = _add_constant(_sbox(cs, state[0]), C[base + rnd])
            new0 = _combine([(row[j], lane) for j, lane in enumerate([s0, *state[1:]])])
            state = [new0, *(_combine([(1, lane), (row[t + k], s0)]) for k, lane in enumerate(state[1:]))]
        base += p.n_rounds_p
        for rnd in range(half - 1):
            state = _mix([_add_constant(_sbox(cs, lane), C[base + rnd * t + i]) for i, lane in enumerate(state)], M)
        return _sbox_into_output(cs, state, [M[j][0] for j in range(t)])


def _lane(cs: ConstraintSystem, x: LinearLike) -> _Lane:
    lc = cs.as_lc(x)  # refuses a variable of another system and anything not linear
    return _Lane(dict(lc.terms), lc.value)


def _constant(value: int) -> _Lane:
    value %= R
    return _Lane({ONE_WIRE: value} if value else {}, value)


def _add_constant(lane: _Lane, c: int) -> _Lane:
    return _combine([(1, lane)], c)


def _combine(pairs: Sequence[tuple[int, _Lane]], constant: int = 0) -> _Lane:
    """sum coeff * lane + constant, as merged terms and a value."""
    terms: Terms = {ONE_WIRE: constant % R} if constant % R else {}
    value = constant
    for coeff, lane in pairs:
        value += coeff * lane.value
        for wire, k in lane.terms.items():
            merged = (terms.get(wire, 0) + coeff * k) % R
            if merged:
                terms[wire] = merged
            else:
                terms.pop(wire, None)
    return _Lane(terms, value % R)


def _mix(state: list[_Lane], matrix: Sequence[Sequence[int]]) -> list[_Lane]:
    # new[i] = sum_j matrix[j][i] * old[j], poseidon.circom's Mix (linear: no constraint)
    t = len(state)
    return [_combine([(matrix[j][i], state[j]) for j in range(t)]) for i in range(t)]


def _sbox(cs: ConstraintSystem, x: _Lane) -> _Lane:
    """x^5: poseidon.circom's Sigma (3 constraints), or a constant for a constant x."""
    if x.is_constant:
        return _constant(pow(x.value, 5, R))
    x4 = _square(cs, _square(cs, x))
    x5 = cs.private(x4.value * x.value % R)
    cs.enforce(LinearCombination(cs, x4.terms), LinearCombination(cs, x.terms), x5)
    return _Lane({x5.wire: 1}, x5.value)


def _square(cs: ConstraintSystem, x: _Lane) -> _Lane:
    square = cs.private(x.value * x.value % R)
    lc = LinearCombination(cs, x.terms)
    cs.enforce(lc, lc, square)
    return _Lane({square.wire: 1}, square.value)


def _sbox_into_output(cs: ConstraintSystem, state: list[_Lane], column: list[int]) -> Variable:
    """out = sum_j column[j] * sbox(state[j]), the last round and MixLast, with out as lane 0's x5 wire."""
    rest = [(column[j], _sbox(cs, lane)) for j, lane in enumerate(state) if j > 0]
    x = state[0]
    # the substitution needs lane 0 to be a wire with a non-zero weight (all inputs constant, or an
    # M[0][0] of 0, would make it the plain S-box followed by one linear constraint)
    if x.is_constant or column[0] % R == 0:
        total = _combine([(column[0], _sbox(cs, x)), *rest])
        out = cs.private(total.value)
        cs.enforce(LinearCombination(cs, total.terms), 1, out)
        return out
    x4 = _square(cs, _square(cs, x))
    x5 = x4.value * x.value % R
    out = cs.private((column[0] * x5 + sum(k * lane.value for k, lane in rest)) % R)
    # x4 * x = (out - sum_{j>0} column[j] * x5_j) / column[0]
    inverse = pow(column[0], -1, R)
    rhs = _combine([(inverse, _Lane({out.wire: 1}, out.value)), *((-k * inverse, lane) for k, lane in rest)])
    cs.enforce(LinearCombination(cs, x4.terms), LinearCombination(cs, x.terms), LinearCombination(cs, rhs.terms))
    return out


def select_child(cs: ConstraintSystem, index_bits: Sequence[LinearLike], children: Sequence[LinearLike]) -> Variable:
    """children[index] for index = sum bits[i] * 2^i (little-endian bits, each already known to be
    boolean): a binary tree of selections, len(children) - 1 constraints. len(children) must be
    2 ** len(index_bits)."""
    # one child per index value: a tree position among 2^m siblings
    if len(children) != 1 << len(index_bits) or not index_bits:
        raise ValueError(f"select_child needs 2**{len(index_bits)} children for {len(index_bits)} index bits, got {len(children)}")
    level = [cs.as_lc(c) for c in children]
    with cs.gadget("select_child"):
        for bit in index_bits:
            bit_lc = cs.as_lc(bit)
            # a non-boolean bit would mix two children
            if bit_lc.value not in (0, 1):
                raise WitnessError(f"select_child needs boolean index bits, got {bit_lc.value}")
            pairs = [(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            level = []
            for low, high in pairs:
                chosen = cs.private(high.value if bit_lc.value else low.value)
                # chosen - low = bit * (high - low)
                cs.enforce(bit_lc, high - low, chosen - low)
                level.append(chosen)
    return level[0]  # type: ignore[return-value]
