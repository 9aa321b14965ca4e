"""Rank-1 constraint systems over the scalar field Fr of a pairing-friendly curve.

Constraints and the witness are built together, as in arkworks' `ConstraintSystem` or bellman:
allocating a variable gives it its value at once, so a gadget both constrains and computes.

Layout (circom's, and what the exporters and the prover rely on):
    wire 0                      the constant ONE
    wires 1 .. n_public         public inputs, in the order they were allocated
    wires n_public + 1 ..       private wires, in the order they were allocated
Public inputs may be allocated after private wires; indices are remapped when the final layout is
read (`constraints`, `witness`), so publics always come right after wire 0.

A constraint is a triple of linear combinations (A, B, C) meaning <A, w> * <B, w> = <C, w>.
A linear combination is a `dict[int, int]`: wire index -> coefficient in [0, r).
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import Iterator, Union

from verifier.curve import BN254, Curve

Fr = int
LC = dict[int, int]
Constraint = tuple[LC, LC, LC]

ONE_WIRE = 0


class UnsatisfiedConstraint(ValueError):
    """The assignment does not satisfy a constraint: the statement being proven is false."""

    def __init__(self, index: int, gadget: str, a: int, b: int, c: int):
        self.index = index
        self.gadget = gadget
        where = f" (in gadget '{gadget}')" if gadget else ""
        super().__init__(f"constraint {index}{where} is not satisfied: {a} * {b} != {c} (mod r)")


class WitnessError(ValueError):
    """A gadget was asked to prove something false, e.g. a value that does not fit its range."""


class LinearCombination:
    """A sum of coefficient * wire over Fr, with +, - and * by constants.

    Internal wire ids: 0 is ONE, k > 0 is the k-th public input, -k (k > 0) the k-th private wire.
    They become final indices when the constraint system is read.
    """

    __slots__ = ("cs", "terms")

    def __init__(self, cs: "ConstraintSystem", terms: LC):
        self.cs = cs
        self.terms = terms

    # --- arithmetic ---
    def _coerce(self, other: "LinearCombination | int") -> "LinearCombination":
        if isinstance(other, LinearCombination):
            # both sides must live in the same system: mixing wires of two circuits is a bug
            if other.cs is not self.cs:
                raise ValueError("cannot combine variables of two different constraint systems")
            return other
        if isinstance(other, int):
            return self.cs.constant(other)
        return NotImplemented  # type: ignore[return-value]

    def __add__(self, other: "LinearCombination | int") -> "LinearCombination":
        other = self._coerce(other)
        if other is NotImplemented:
            return NotImplemented
        r = self.cs.r
        terms = dict(self.terms)
        for wire, coeff in other.terms.items():
            value = (terms.get(wire, 0) + coeff) % r
            if value:
                terms[wire] = value
            else:
                terms.pop(wire, None)
        return LinearCombination(self.cs, terms)

    __radd__ = __add__

    def __neg__(self) -> "LinearCombination":
        r = self.cs.r
        return LinearCombination(self.cs, {wire: (r - coeff) % r for wire, coeff in self.terms.items()})

    def __sub__(self, other: "LinearCombination | int") -> "LinearCombination":
        other = self._coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other: int) -> "LinearCombination":
        return (-self) + other

    def __mul__(self, k: int) -> "LinearCombination":
        # only scalar multiples are linear; a product of two variables is a constraint (cs.mul)
        if isinstance(k, LinearCombination):
            raise TypeError("multiplying two variables needs a constraint: use gadgets.mul(cs, a, b)")
        if not isinstance(k, int):
            return NotImplemented
        r = self.cs.r
        k %= r
        if k == 0:
            return LinearCombination(self.cs, {})
        return LinearCombination(self.cs, {wire: coeff * k % r for wire, coeff in self.terms.items()})

    __rmul__ = __mul__

    # --- value ---
    @property
    def value(self) -> Fr:
        """The value of this combination under the witness built so far."""
        return self.cs.evaluate(self.terms)

    def __repr__(self) -> str:
        return f"LinearCombination({self.terms}, value={self.value})"


class Variable(LinearCombination):
    """One wire: a linear combination with a single term of coefficient 1."""

    __slots__ = ("wire",)

    def __init__(self, cs: "ConstraintSystem", wire: int):
        super().__init__(cs, {wire: 1})
        self.wire = wire

    def __repr__(self) -> str:
        return f"Variable(wire={self.wire}, value={self.value})"


LinearLike = Union[LinearCombination, int]


class ConstraintSystem:
    """An R1CS with its witness, over the scalar field of `curve` (BN254 by default)."""

    def __init__(self, curve: Curve = BN254):
        self.curve = curve
        self.r: int = curve.r
        self._public_values: list[Fr] = [1]  # internal id k >= 0 (0 is ONE)
        self._private_values: list[Fr] = [0]  # internal id -k, k >= 1; slot 0 unused
        self._public_names: list[str | None] = ["ONE"]
        self._private_names: list[str | None] = [None]
        self._raw_constraints: list[Constraint] = []
        self._constraint_gadgets: list[str] = []
        self._gadget_stack: list[str] = []
        self._gadget_name = ""  # "/".join(self._gadget_stack), kept current: every constraint records it
        self._cache: tuple[int, int, list[Constraint], list[Fr]] | None = None
        self.one = Variable(self, ONE_WIRE)

    # --- allocation ---
    def public_input(self, value: int, name: str | None = None) -> Variable:
        """Allocate a public input with its value (reduced mod r)."""
        self._public_values.append(self._check_value(value))
        self._public_names.append(name)
        return Variable(self, len(self._public_values) - 1)

    def private(self, value: int, name: str | None = None) -> Variable:
        """Allocate a private wire (a witness value, unconstrained until a gadget constrains it)."""
        self._private_values.append(self._check_value(value))
        self._private_names.append(name)
        return Variable(self, -(len(self._private_values) - 1))

    def constant(self, value: int) -> LinearCombination:
        value %= self.r
        return LinearCombination(self, {ONE_WIRE: value} if value else {})

    def _check_value(self, value: int) -> Fr:
        # witness values are field elements: integers, reduced mod r (negatives wrap to r - |v|)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"a wire value must be an int, got {type(value).__name__}")
        return value % self.r

    # --- constraints ---
    def enforce(self, a: LinearLike, b: LinearLike, c: LinearLike) -> int:
        """Add the constraint a * b = c; returns its index. Values are not checked here (see check)."""
        a_lc, b_lc, c_lc = (self.as_lc(x) for x in (a, b, c))
        return self.enforce_terms(dict(a_lc.terms), dict(b_lc.terms), dict(c_lc.terms))

    def enforce_terms(self, a: LC, b: LC, c: LC) -> int:
        """`enforce` for gadgets that build term dictionaries themselves (internal wire ids, reduced
        coefficients, no zero terms): the dictionaries are kept as given, so the caller must not
        change them afterwards. The same constraint as `enforce` of the same terms."""
        self._raw_constraints.append((a, b, c))
        self._constraint_gadgets.append(self._gadget_name)
        return len(self._raw_constraints) - 1

    def as_lc(self, x: LinearLike) -> LinearCombination:
        """x as a linear combination of this system (an int becomes a constant)."""
        if isinstance(x, LinearCombination):
            # a wire from another system would silently point at the wrong value here
            if x.cs is not self:
                raise ValueError("cannot use a variable of another constraint system")
            return x
        if isinstance(x, int):
            return self.constant(x)
        raise TypeError(f"expected a variable, linear combination or int, got {type(x).__name__}")

    @contextmanager
    def gadget(self, name: str) -> Iterator[None]:
        """Name the constraints added inside this block (nested names join with '/')."""
        self._gadget_stack.append(name)
        self._gadget_name = "/".join(self._gadget_stack)
        try:
            yield
        finally:
            self._gadget_stack.pop()
            self._gadget_name = "/".join(self._gadget_stack)

    # --- evaluation ---
    def evaluate(self, terms: LC) -> Fr:
        """Value of an internal-id linear combination under the current witness."""
        pub = self._public_values
        priv = self._private_values
        total = 0
        for wire, coeff in terms.items():
            total += coeff * (pub[wire] if wire >= 0 else priv[-wire])
        return total % self.r

    def check(self) -> None:
        """Raise UnsatisfiedConstraint for the first constraint the witness does not satisfy."""
        r = self.r
        for index, (a, b, c) in enumerate(self._raw_constraints):
            va, vb, vc = self.evaluate(a), self.evaluate(b), self.evaluate(c)
            if va * vb % r != vc:
                raise UnsatisfiedConstraint(index, self._constraint_gadgets[index], va, vb, vc)

    def is_satisfied(self) -> bool:
        try:
            self.check()
        except UnsatisfiedConstraint:
            return False
        return True

    # --- final layout ---
    @property
    def n_public(self) -> int:
        return len(self._public_values) - 1

    @property
    def n_private(self) -> int:
        return len(self._private_values) - 1

    @property
    def n_vars(self) -> int:
        return 1 + self.n_public + self.n_private

    @property
    def n_constraints(self) -> int:
        return len(self._raw_constraints)

    def _final_index(self, wire: int) -> int:
        return wire if wire >= 0 else self.n_public - wire

    def _get_final(self) -> tuple[list[Constraint], list[Fr]]:
        # the layout depends only on counts: rebuild when anything was added since the last read
        key = (self.n_constraints, self.n_vars)
        if self._cache is None or self._cache[:2] != key:
            offset = self.n_public
            constraints = [
                tuple({(w if w >= 0 else offset - w): k for w, k in lc.items()} for lc in row)
                for row in self._raw_constraints
            ]
            witness = self._public_values + self._private_values[1:]
            self._cache = (key[0], key[1], constraints, witness)  # type: ignore[assignment]
        return self._cache[2], self._cache[3]  # type: ignore[index]

    @property
    def constraints(self) -> list[Constraint]:
        """Constraints in the final layout (publics right after wire 0). Do not mutate."""
        return self._get_final()[0]

    @property
    def witness(self) -> list[Fr]:
        """Full assignment in the final layout: witness[0] == 1, then publics, then privates."""
        return list(self._get_final()[1])

    @property
    def public_inputs(self) -> list[Fr]:
        return list(self._public_values[1:])

    @property
    def constraint_gadgets(self) -> list[str]:
        """The gadget name each constraint was added under ('' outside any gadget)."""
        return list(self._constraint_gadgets)

    @property
    def wire_names(self) -> list[str | None]:
        return self._public_names + self._private_names[1:]

    def final_wire(self, var: Variable) -> int:
        """The final-layout index of a variable (valid once all publics are allocated)."""
        return self._final_index(var.wire)

    def stats(self) -> dict[str, object]:
        """Constraint and variable counts, non-zero terms per matrix, constraints per gadget."""
        per_gadget = Counter(name.split("/")[0] or "(none)" for name in self._constraint_gadgets)
        return {
            "n_constraints": self.n_constraints,
            "n_vars": self.n_vars,
            "n_public": self.n_public,
            "n_private": self.n_private,
            "nnz_a": sum(len(a) for a, _, _ in self._raw_constraints),
            "nnz_b": sum(len(b) for _, b, _ in self._raw_constraints),
            "nnz_c": sum(len(c) for _, _, c in self._raw_constraints),
            "constraints_per_gadget": dict(per_gadget),
        }


def check_assignment(constraints: list[Constraint], witness: list[Fr], r: int, gadgets: list[str] | None = None) -> None:
    """Raise UnsatisfiedConstraint for the first final-layout constraint the witness violates."""
    for index, (a, b, c) in enumerate(constraints):
        va = sum(k * witness[i] for i, k in a.items()) % r
        vb = sum(k * witness[i] for i, k in b.items()) % r
        vc = sum(k * witness[i] for i, k in c.items()) % r
        if va * vb % r != vc:
            raise UnsatisfiedConstraint(index, gadgets[index] if gadgets else "", va, vb, vc)
