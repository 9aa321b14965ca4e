"""Poseidon over BN254's scalar field with circomlib's parameters (circomlibjs `poseidon`, circom `Poseidon(n)`).

The hash of n inputs (1 <= n <= 16) runs the Poseidon permutation on the width t = n + 1 state
[0, x1, ..., xn] (x^5 S-box, 8 full rounds, `PARAMS[t].n_rounds_p` partial rounds) and returns the
first element of the result. Every constant (round constants C, MDS matrix M, the sparse matrices
S and P of the optimized form, the round numbers) is read from `data/poseidon_constants.json`,
extracted from circomlibjs 0.1.7 by `scripts/gen_poseidon_constants.mjs`, and checked here on load.

Implementations, same API and results (`IMPLEMENTATIONS`; tests run one suite over all of them):
- `poseidon_reference`: the textbook permutation (add constants, S-boxes, dense M every round), as
  circomlibjs's `poseidon_reference.js`.
- `poseidon_optimized`: circomlibjs's `poseidon_opt.js` (the one circomlib's circuit follows):
  constants moved through the linear layers so the partial rounds use a sparse matrix (S) instead
  of the dense M; each linear layer sums its big-int products before one reduction per output.
- `poseidon_unrolled`: the optimized algorithm compiled, per width, into straight-line Python
  (generated from the loaded constants on first use, constants folded): no loops, no indexing.
- `poseidon_gmpy2` (with gmpy2, the optional extra `fast`): the same code on gmpy2 integers,
  about 3x faster than on Python ints.
- `poseidon_light` (PyPI's light-poseidon 0.1.1, module `light_poseidon_python`): its Rust
  hasher (the textbook permutation, arkworks field arithmetic); 1 to 12 inputs.
- `poseidon_native` (the optional C extension `verifier._poseidon`, built by setup.py): the
  optimized algorithm in C, Montgomery arithmetic on 4x64-bit limbs, every constant passed in from
  here by `init`; 1.6x (2 inputs) to 3.7x (12) faster than light-poseidon, 3x gmpy2 at 14 and 16.

`poseidon` is the fastest installed for each input count (`FASTEST_BY_ARITY`: native for every
count when the extension is built; without it light for 1..9 inputs, gmpy2 for 10..16, unrolled
without gmpy2); `poseidon2(left, right)` is the two-input hash on that path (the Merkle tree's node
hash) and `poseidon_many(batch)` hashes a list of input sequences (one call into C for all).
Inputs must be ints in [0, r) (r = py_ecc's curve_order): anything else raises ValueError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from py_ecc.optimized_bn128 import curve_order

R = curve_order  # BN254's scalar field: Poseidon's field here, as in circom
CONSTANTS_FILE = "poseidon_constants.json"

Fr = int
Matrix = tuple[tuple[int, ...], ...]


class PoseidonConstantsError(ValueError):
    """The constants file is not the one this module expects (wrong shape, value out of the field)."""


@dataclass(frozen=True)
class PoseidonParams:
    """Constants of the width-t permutation, as circomlibjs publishes them (lists indexed by t - 2)."""

    t: int
    n_rounds_f: int
    n_rounds_p: int
    C: tuple[int, ...]  # reference round constants, (n_rounds_f + n_rounds_p) * t of them
    M: Matrix  # MDS matrix; the reference mixes new[i] = sum_j M[i][j] * old[j]
    C_opt: tuple[int, ...]  # optimized form's constants, n_rounds_f * t + n_rounds_p of them
    S: tuple[int, ...]  # the partial rounds' sparse matrices, (2t - 1) per round
    M_opt: Matrix  # M transposed: the optimized form mixes new[i] = sum_j M_opt[j][i] * old[j]
    P: Matrix  # the dense matrix of the first partial round's linear layer


# ---- constants ----


def load_params(raw: dict[str, Any]) -> dict[int, PoseidonParams]:
    """The constants of every width from the constants file's JSON, checked (PoseidonConstantsError)."""
    n_rounds_f, n_rounds_p = raw["n_rounds_f"], raw["n_rounds_p"]
    # the full rounds split in two equal halves around the partial ones
    if not (type(n_rounds_f) is int and n_rounds_f > 0 and n_rounds_f % 2 == 0):
        raise PoseidonConstantsError(f"n_rounds_f must be a positive even number, got {n_rounds_f!r}")
    tables = {f"reference {k}": raw["reference"][k] for k in ("C", "M")}
    tables.update({f"optimized {k}": raw["optimized"][k] for k in ("C", "S", "M", "P")})
    for name, table in tables.items():
        # one entry per width (t = 2, 3, ...) in every table
        if len(table) != len(n_rounds_p):
            raise PoseidonConstantsError(f"{name} has {len(table)} widths, expected {len(n_rounds_p)}")
    ref, opt = raw["reference"], raw["optimized"]
    params = {
        k + 2: PoseidonParams(
            t=k + 2,
            n_rounds_f=n_rounds_f,
            n_rounds_p=partial,
            C=_to_ints(ref["C"][k]),
            M=tuple(_to_ints(row) for row in ref["M"][k]),
            C_opt=_to_ints(opt["C"][k]),
            S=_to_ints(opt["S"][k]),
            M_opt=tuple(_to_ints(row) for row in opt["M"][k]),
            P=tuple(_to_ints(row) for row in opt["P"][k]),
        )
        for k, partial in enumerate(n_rounds_p)
    }
    for p in params.values():
        check_params(p)
    return params


def _to_ints(values: Sequence[str]) -> tuple[int, ...]:
    return tuple(int(v, 16) for v in values)


def check_params(p: PoseidonParams) -> None:
    """Raise PoseidonConstantsError unless the width-t constants have the shapes the algorithms index."""
    t = p.t
    shapes = {
        "C": (len(p.C), (p.n_rounds_f + p.n_rounds_p) * t),
        "C_opt": (len(p.C_opt), p.n_rounds_f * t + p.n_rounds_p),
        "S": (len(p.S), (2 * t - 1) * p.n_rounds_p),
    }
    for name, (got, expected) in shapes.items():
        # the algorithms index exactly this many constants
        if got != expected:
            raise PoseidonConstantsError(f"t={t}: {name} has {got} constants, expected {expected}")
    for name, matrix in (("M", p.M), ("M_opt", p.M_opt), ("P", p.P)):
        # square matrices of the state's width
        if len(matrix) != t or any(len(row) != t for row in matrix):
            raise PoseidonConstantsError(f"t={t}: {name} is not a {t}x{t} matrix")
    # both forms use the same MDS matrix (poseidon_opt.js indexes it transposed)
    if any(p.M_opt[j][i] != p.M[i][j] for i in range(t) for j in range(t)):
        raise PoseidonConstantsError(f"t={t}: the optimized M is not the reference M transposed")
    values = [*p.C, *p.C_opt, *p.S, *(x for m in (p.M, p.P) for row in m for x in row)]
    # every constant is a field element
    if any(not 0 <= x < R for x in values):
        raise PoseidonConstantsError(f"t={t}: a constant is not in [0, r)")


def _load_constants() -> tuple[dict[str, Any], dict[int, PoseidonParams]]:
    raw = json.loads(resources.files("verifier").joinpath("data", CONSTANTS_FILE).read_text())
    return raw["source"], load_params(raw)


CONSTANTS_SOURCE, PARAMS = _load_constants()
MAX_INPUTS = max(PARAMS) - 1  # 16


def get_params(n_inputs: int) -> PoseidonParams:
    """The width-(n_inputs + 1) constants."""
    # circomlib defines Poseidon for 1..16 inputs
    if not 1 <= n_inputs <= MAX_INPUTS:
        raise ValueError(f"Poseidon takes 1 to {MAX_INPUTS} inputs, got {n_inputs}")
    return PARAMS[n_inputs + 1]


# ---- input checks ----


_PLAIN_SEQUENCES = (list, tuple)


def check_inputs(inputs: Sequence[int]) -> None:
    """Raise ValueError unless `inputs` is a sequence of 1..16 ints in [0, r)."""
    # the usual case in one pass (a list or tuple of plain ints in range); anything else is looked
    # at element by element below, for the error's message
    if type(inputs) in _PLAIN_SEQUENCES and 0 < len(inputs) <= MAX_INPUTS and all(type(x) is int and 0 <= x < R for x in inputs):
        return
    # a str or bytes would be read as a sequence of characters or small ints
    if isinstance(inputs, (str, bytes, bytearray)) or not isinstance(inputs, Sequence):
        raise ValueError(f"Poseidon inputs must be a sequence of ints, got {type(inputs).__name__}")
    # circomlib defines Poseidon for 1..16 inputs
    if not 1 <= len(inputs) <= MAX_INPUTS:
        raise ValueError(f"Poseidon takes 1 to {MAX_INPUTS} inputs, got {len(inputs)}")
    for i, x in enumerate(inputs):
        _check_input(i, x)


def _check_input(i: int, x: Any) -> None:
    # bool is an int subclass, but True as a field element is almost surely a mistake
    if type(x) is not int and (not isinstance(x, int) or isinstance(x, bool)):
        raise ValueError(f"Poseidon input {i} must be an int, got {type(x).__name__}")
    # no silent reduction: two different ints must not hash alike
    if not 0 <= x < R:
        raise ValueError(f"Poseidon input {i} = {x} is not a field element: it must be in [0, r), r = {R}")


# ---- reference: the textbook permutation ----


def poseidon_reference(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..16 field elements: circomlibjs's `poseidon_reference.js`, round by round."""
    check_inputs(inputs)
    p = get_params(len(inputs))
    t, half = p.t, p.n_rounds_f // 2
    state = [0, *inputs]
    for rnd in range(p.n_rounds_f + p.n_rounds_p):
        state = [(x + p.C[rnd * t + i]) % R for i, x in enumerate(state)]
        if rnd < half or rnd >= half + p.n_rounds_p:
            state = [pow(x, 5, R) for x in state]
        else:
            state[0] = pow(state[0], 5, R)
        state = [sum(m * x for m, x in zip(row, state)) % R for row in p.M]
    return state[0]


# ---- optimized: circomlibjs's poseidon_opt.js ----


def poseidon_optimized(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..16 field elements with the sparse partial rounds of `poseidon_opt.js`."""
    check_inputs(inputs)
    p = get_params(len(inputs))
    t, half, C, S = p.t, p.n_rounds_f // 2, p.C_opt, p.S
    columns = tuple(zip(*p.M_opt))  # column i of M_opt gives new[i]
    p_columns = tuple(zip(*p.P))

    def sbox(x: int) -> int:
        x2 = x * x % R
        return x2 * x2 * x % R

    def mix(state: list[int], cols: Matrix) -> list[int]:
        # one reduction per output: the products are summed as big ints first
        return [sum(m * x for m, x in zip(col, state)) % R for col in cols]

    state = [(x + C[i]) % R for i, x in enumerate([0, *inputs])]
    for rnd in range(half - 1):
        state = mix([(sbox(x) + C[(rnd + 1) * t + i]) for i, x in enumerate(state)], columns)
    state = mix([(sbox(x) + C[half * t + i]) for i, x in enumerate(state)], p_columns)
    base = (half + 1) * t
    for rnd in range(p.n_rounds_p):
        s0 = sbox(state[0]) + C[base + rnd]
        row = S[(2 * t - 1) * rnd : (2 * t - 1) * (rnd + 1)]
        # the other lanes only accumulate s0 * S: reduce them once per round, with the new lane 0
        new0 = (row[0] * s0 + sum(m * x for m, x in zip(row[1:t], state[1:]))) % R
        state = [new0, *((x + s0 * m) % R for x, m in zip(state[1:], row[t:]))]
    base += p.n_rounds_p
    for rnd in range(half - 1):
        state = mix([(sbox(x) + C[base + rnd * t + i]) for i, x in enumerate(state)], columns)
    return sum(m * sbox(x) for m, x in zip(columns[0], state)) % R


# ---- unrolled: the optimized algorithm as straight-line code ----
# Python spends more on interpreting loops and indexing tuples than on the field arithmetic of a
# 254-bit state; compiled per width, with constants folded together, the same algorithm runs about
# 1.7x faster (benchmarks/poseidon_bench.py). The source is generated from PARAMS, never written.


def _unroll(p: PoseidonParams, convert: bool) -> tuple[str, list[int]]:
    """Source of `hash_t<t>(inputs)` and its constants (the globals k0, k1, ...; the modulus is R).
    With `convert`, inputs pass through the global `to_number` and the result through `int`."""
    t, half, C, S, M = p.t, p.n_rounds_f // 2, p.C_opt, p.S, p.M_opt
    consts: list[int] = []
    lines = [f"def hash_t{t}(inputs):"]

    def k(value: int) -> str:
        consts.append(value % R)
        return f"k{len(consts) - 1}"

    def emit(line: str) -> None:
        lines.append("    " + line)

    def sbox(src: str, dst: str) -> None:
        # x^5 with two reductions: the 768-bit x^4 * x costs less than a third reduction
        emit(f"a = {src} * {src} % R")
        emit(f"{dst} = a * a * {src} % R")

    lanes = [f"s{i}" for i in range(t)]
    emit(f"{', '.join(lanes[1:])}, = {'map(to_number, inputs)' if convert else 'inputs'}")
    for i in range(1, t):
        emit(f"s{i} = s{i} + {k(C[i])}")
    lane0 = C[0]  # the capacity lane starts as the constant 0 + C[0]: its first S-box folds away

    def full_round(added: Sequence[int], matrix: Matrix, constant_lane0: bool) -> None:
        # new_i = sum_j matrix[j][i] * (sbox(s_j) + added_j): the added constants fold into one per lane
        for j in range(t):
            if not (constant_lane0 and j == 0):
                sbox(f"s{j}", f"b{j}")
        for i in range(t):
            folded = sum(matrix[j][i] * added[j] for j in range(t))
            terms = []
            for j in range(t):
                if constant_lane0 and j == 0:
                    folded += matrix[0][i] * pow(lane0, 5, R)
                else:
                    terms.append(f"{k(matrix[j][i])} * b{j}")
            emit(f"n{i} = ({' + '.join(terms)} + {k(folded)}) % R")
        emit(f"{', '.join(lanes)} = {', '.join(f'n{i}' for i in range(t))}")

    for rnd in range(half - 1):
        full_round(C[(rnd + 1) * t : (rnd + 2) * t], M, rnd == 0)
    full_round(C[half * t : (half + 1) * t], p.P, half == 1)
    base = (half + 1) * t
    # lanes 1.. only accumulate through the partial rounds: left unreduced (about 520 bits at the
    # end), and their constant parts kept here, out of the code (lane j is s<j> + offset[j]), which
    # folds them into lane 0's constant (one addition less per lane and round)
    offset = [0] * t
    for rnd in range(p.n_rounds_p):
        row, c = S[(2 * t - 1) * rnd : (2 * t - 1) * (rnd + 1)], C[base + rnd]
        sbox("s0", "b0")
        terms = [f"{k(row[0])} * b0", *(f"{k(row[j])} * s{j}" for j in range(1, t))]
        folded = row[0] * c + sum(row[j] * offset[j] for j in range(1, t))
        emit(f"n0 = ({' + '.join(terms)} + {k(folded)}) % R")
        for j in range(1, t):
            emit(f"s{j} = s{j} + b0 * {k(row[t + j - 1])}")
            offset[j] = (offset[j] + row[t + j - 1] * c) % R
        emit("s0 = n0")
    for j in range(1, t):
        emit(f"s{j} = (s{j} + {k(offset[j])}) % R")
    base += p.n_rounds_p
    for rnd in range(half - 1):
        full_round(C[base + rnd * t : base + (rnd + 1) * t], M, False)
    for j in range(t):
        sbox(f"s{j}", f"b{j}")
    result = f"({' + '.join(f'{k(M[j][0])} * b{j}' for j in range(t))}) % R"
    emit(f"return {'int(' + result + ')' if convert else result}")
    return "\n".join(lines) + "\n", consts


def compile_unrolled(p: PoseidonParams, number: Callable[[int], Any] = int) -> Callable[[Sequence[int]], Fr]:
    """The unrolled width-t hash computing with `number`s (int, or gmpy2.mpz); inputs unchecked."""
    convert = number is not int
    source, consts = _unroll(p, convert)
    namespace: dict[str, Any] = {f"k{i}": number(c) for i, c in enumerate(consts)}
    namespace.update(R=number(R), to_number=number)
    exec(compile(source, f"<poseidon unrolled t={p.t}>", "exec"), namespace)  # source built above from PARAMS only
    return namespace[f"hash_t{p.t}"]


class _Unrolled:
    """Compiled hashes per width, built on first use."""

    def __init__(self, number: Callable[[int], Any]):
        self.number = number
        self.compiled: dict[int, Callable[[Sequence[int]], Fr]] = {}

    def get(self, n_inputs: int) -> Callable[[Sequence[int]], Fr]:
        fn = self.compiled.get(n_inputs)
        if fn is None:
            fn = self.compiled[n_inputs] = compile_unrolled(get_params(n_inputs), self.number)
        return fn


_UNROLLED_INT = _Unrolled(int)


def poseidon_unrolled(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..16 field elements: the optimized algorithm unrolled, plain Python ints."""
    check_inputs(inputs)
    return _UNROLLED_INT.get(len(inputs))(inputs)


# gmpy2 (LGPL, the optional extra `fast`) multiplies and reduces 254-bit numbers about 3x faster
try:
    import gmpy2

    _UNROLLED_GMPY2: _Unrolled | None = _Unrolled(gmpy2.mpz)
except ImportError:  # pragma: no cover - depends on the extras installed
    _UNROLLED_GMPY2 = None


def poseidon_gmpy2(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..16 field elements: the unrolled algorithm on gmpy2 integers."""
    # this backend exists only with gmpy2 installed
    if _UNROLLED_GMPY2 is None:
        raise RuntimeError("poseidon_gmpy2 needs gmpy2: pip install 'zk-derivatives-rollup[fast]'")
    check_inputs(inputs)
    return _UNROLLED_GMPY2.get(len(inputs))(inputs)


# ---- light-poseidon: Rust (arkworks), circomlib's constants, 1..12 inputs ----
# PyPI's `light-poseidon` 0.1.1 installs the module `light_poseidon_python`, the same name as the
# unrelated `light-poseidon-python` 0.1.10 (two inputs only, silently reduces inputs >= r): only a
# `Hasher` with `hash_bytes_be` is the one this code expects, anything else counts as not installed.
# Its `poseidon_hash(ints)` takes 64-bit ints only, so field elements go in as 32 big-endian bytes.
try:
    from light_poseidon_python import Hasher as _LightHasher
except ImportError:  # pragma: no cover - a declared dependency, but only with a CPython 3.11 wheel
    _LightHasher = None
if _LightHasher is not None and not hasattr(_LightHasher, "hash_bytes_be"):  # pragma: no cover
    _LightHasher = None

LIGHT_MAX_INPUTS = 12  # light-poseidon's widths: Hasher(13) raises "Invalid width: 14"


def _compile_light(n_inputs: int) -> Callable[[Sequence[int]], Fr]:
    """The n-input light-poseidon hash, inputs unchecked: one Hasher, built once (a new one per
    call costs a quarter of the hash: poseidon_hash_bytes does that)."""
    hash_be = _LightHasher(n_inputs).hash_bytes_be

    def hash_light(inputs: Sequence[int]) -> Fr:
        # it answers with "0x" and 64 hex digits
        return int(hash_be([x.to_bytes(32, "big") for x in inputs]), 16)

    return hash_light


_LIGHT: dict[int, Callable[[Sequence[int]], Fr]] = (
    {n: _compile_light(n) for n in range(1, LIGHT_MAX_INPUTS + 1)} if _LightHasher is not None else {}
)


def poseidon_light(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..12 field elements through light-poseidon's Rust hasher."""
    # the package is pinned, but its only wheel is for CPython 3.11 on x86-64 Linux
    if _LightHasher is None:
        raise RuntimeError("poseidon_light needs light-poseidon 0.1.1 (module light_poseidon_python), which is not installed")
    check_inputs(inputs)
    fn = _LIGHT.get(len(inputs))
    # light-poseidon has no constants for wider states
    if fn is None:
        raise ValueError(f"light-poseidon hashes 1 to {LIGHT_MAX_INPUTS} inputs, got {len(inputs)}")
    # it refuses inputs >= r itself too ("Input is larger than the modulus"): checked above with our message
    return fn(inputs)


# ---- native: verifier/_poseidon.c ----
# Optional: setup.py builds it when a C compiler is there; without it every other path still runs.
# init hands it the modulus and the optimized form's tables checked above (it types no constant).
try:
    from verifier import _poseidon as _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None
if _native is not None:
    _native.init(R, [(p.t, p.n_rounds_f, p.n_rounds_p, p.C_opt, p.S, p.M_opt, p.P) for p in PARAMS.values()])


def poseidon_native(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..16 field elements: the optimized algorithm in C (verifier._poseidon)."""
    # this backend exists only where the extension was built
    if _native is None:
        raise RuntimeError("poseidon_native needs the C extension verifier._poseidon: reinstall with a C compiler (pip install -e .)")
    check_inputs(inputs)
    # the extension takes lists and tuples only (it checks the inputs again, with the same messages)
    return _native.hash(inputs if type(inputs) in _PLAIN_SEQUENCES else tuple(inputs))


# ---- the registry and the fast defaults ----

IMPLEMENTATIONS: dict[str, Callable[[Sequence[int]], Fr]] = {
    "reference": poseidon_reference,
    "optimized": poseidon_optimized,
    "unrolled": poseidon_unrolled,
}
if _UNROLLED_GMPY2 is not None:
    IMPLEMENTATIONS["gmpy2"] = poseidon_gmpy2
if _LightHasher is not None:
    IMPLEMENTATIONS["light"] = poseidon_light
if _native is not None:
    IMPLEMENTATIONS["native"] = poseidon_native

ALL_ARITIES = tuple(range(1, MAX_INPUTS + 1))
LIGHT_ARITIES = tuple(range(1, LIGHT_MAX_INPUTS + 1))
# the input counts each implementation takes (the others raise ValueError)
ARITIES: dict[str, tuple[int, ...]] = {name: LIGHT_ARITIES if name == "light" else ALL_ARITIES for name in IMPLEMENTATIONS}

# benchmarks/poseidon_bench.py: the native extension is the fastest at every input count (1.6x
# light-poseidon for 2 inputs, 2.1x for 5, 3.7x for 12: light's permutation mixes with the dense
# matrix in every round; 3x gmpy2 for 14 and 16, where light has no constants). Without it: light's cost grows faster with the width than
# gmpy2's sparse partial rounds, so light is 1.5-2x faster for 1..5 inputs, about 1.3x at 6 and 7,
# 1.1x at 8 and 9, even or slower from 10 on (without gmpy2, the Python-int code is 3x slower still
# and light wins at every width it has)
LIGHT_FASTEST_UP_TO = 9 if _UNROLLED_GMPY2 is not None else LIGHT_MAX_INPUTS

_FASTEST = _UNROLLED_GMPY2 or _UNROLLED_INT
FASTEST_NAME = "gmpy2" if _UNROLLED_GMPY2 is not None else "unrolled"  # for the input counts light does not win


def _get_fastest_name(n: int) -> str:
    if _native is not None:
        return "native"
    return "light" if n in _LIGHT and n <= LIGHT_FASTEST_UP_TO else FASTEST_NAME


# per input count: the implementation `poseidon` runs
FASTEST_BY_ARITY: dict[int, str] = {n: _get_fastest_name(n) for n in ALL_ARITIES}
FASTEST_PAIR_NAME = FASTEST_BY_ARITY[2]  # for 2 inputs
# the unchecked hash `poseidon` runs per input count where it is native or light; the other widths
# compile on first use (all of them at import would cost a quarter of a second in every process)
_DEFAULT: dict[int, Callable[[Sequence[int]], Fr]] = {
    n: _native.hash if name == "native" else _LIGHT[n]
    for n, name in FASTEST_BY_ARITY.items()
    if name in ("native", "light")
}


def poseidon(inputs: Sequence[int]) -> Fr:
    """Poseidon of 1..16 field elements (circomlib's): the fastest implementation installed."""
    check_inputs(inputs)
    fn = _DEFAULT.get(len(inputs)) or _FASTEST.get(len(inputs))
    # the extension takes lists and tuples only
    return fn(inputs if type(inputs) in _PLAIN_SEQUENCES else tuple(inputs))


def poseidon_many(batch: Sequence[Sequence[int]]) -> list[Fr]:
    """`poseidon` of each input sequence in `batch`, in order; with the extension, one call for all."""
    for inputs in batch:
        check_inputs(inputs)
    if _native is not None:
        return _native.hash_many([inputs if type(inputs) in _PLAIN_SEQUENCES else tuple(inputs) for inputs in batch])
    return [poseidon(inputs) for inputs in batch]


_pair = _DEFAULT.get(2) or _FASTEST.get(2)


def get_unchecked_hash(n_inputs: int) -> Callable[[Sequence[int]], Fr]:
    """`poseidon` of n_inputs field elements without the input checks, for callers whose inputs
    are field elements by construction (EdDSA verification checks every coordinate first): the
    checks cost about 1.5% of a 5-input hash. Takes a list or tuple; wrong inputs give a wrong
    hash or an error (the native one checks them itself)."""
    get_params(n_inputs)  # 1..16
    return _DEFAULT.get(n_inputs) or _FASTEST.get(n_inputs)


def poseidon2(left: int, right: int) -> Fr:
    """Poseidon(left, right), the Merkle tree's node hash, on the fastest path installed.
    (circomlib's Poseidon of two inputs: not the different "Poseidon2" permutation.)"""
    _check_input(0, left)
    _check_input(1, right)
    return _pair((left, right))
