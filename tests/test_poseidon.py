"""Poseidon (verifier/poseidon.py): every implementation against the reference, circomlibjs and published vectors.

The tests marked `interop` run circomlibjs 0.1.7 from node_modules (CI runs `npm ci`); they skip
only when node_modules/circomlibjs is missing.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from verifier import poseidon as P

ROOT = Path(__file__).resolve().parent.parent
CIRCOMLIBJS = ROOT / "node_modules" / "circomlibjs"
CONSTANTS = ROOT / "verifier" / "data" / "poseidon_constants.json"
needs_circomlibjs = pytest.mark.skipif(
    not (CIRCOMLIBJS / "package.json").exists(), reason="circomlibjs not installed: run `npm ci` in the repository root"
)

# /work/shared/MEASURED.md: circomlibjs 0.1.7 and light-poseidon agree on these
KNOWN = [
    ([1, 2], 7853200120776062878684798364095072458815029376092732009249414926327459813530),
    ([1, 2, 3, 4], 18821383157269793795438455681495246036402687001665670618754263018637548127333),
]

CASES = [(name, n) for name in P.IMPLEMENTATIONS for n in P.ARITIES[name]]


def get_vectors(n: int, count: int, seed: int) -> list[list[int]]:
    """Edge values (0, 1, r - 1) and random field elements, `n` per vector."""
    rng = random.Random(seed * 1000 + n)
    vectors = [[0] * n, [P.R - 1] * n, [(i * 7919) % P.R for i in range(1, n + 1)]]
    vectors += [[rng.randrange(P.R) for _ in range(n)] for _ in range(count)]
    return vectors


def run_circomlibjs(vectors: list[list[int]]) -> dict[str, list[int]]:
    proc = subprocess.run(
        ["node", str(ROOT / "scripts" / "circomlibjs_poseidon.mjs")],
        input=json.dumps([[str(x) for x in v] for v in vectors]),
        capture_output=True, text=True, timeout=120, check=True, cwd=ROOT,
    )
    out = json.loads(proc.stdout)
    assert out["version"] == "0.1.7"
    return {name: [int(x) for x in out[name]] for name in ("wasm", "optimized", "reference")}


# ---- agreement ----


@pytest.mark.parametrize("name,n", CASES)
def test_matches_reference(name: str, n: int) -> None:
    fn = P.IMPLEMENTATIONS[name]
    for inputs in get_vectors(n, 3, seed=1):
        assert fn(inputs) == P.poseidon_reference(inputs)
        assert fn(tuple(inputs)) == P.poseidon_reference(inputs)  # any sequence


@pytest.mark.parametrize("name", list(P.IMPLEMENTATIONS))
@pytest.mark.parametrize("inputs,expected", KNOWN)
def test_known_vectors(name: str, inputs: list[int], expected: int) -> None:
    if len(inputs) not in P.ARITIES[name]:
        pytest.skip(f"{name} takes {P.ARITIES[name]} inputs")
    result = P.IMPLEMENTATIONS[name](inputs)
    assert type(result) is int and result == expected


@pytest.mark.parametrize("inputs,expected", KNOWN)
def test_default_and_pair(inputs: list[int], expected: int) -> None:
    assert P.poseidon(inputs) == expected
    if len(inputs) == 2:
        assert P.poseidon2(*inputs) == expected


def test_poseidon_and_poseidon2_on_random_inputs() -> None:
    for n in P.ALL_ARITIES:
        for inputs in get_vectors(n, 2, seed=2):
            assert P.poseidon(inputs) == P.poseidon_reference(inputs)
    for left, right in get_vectors(2, 20, seed=3):
        assert P.poseidon2(left, right) == P.poseidon_reference([left, right])
        assert P.poseidon2(left, right) != P.poseidon2(right, left) or left == right


@pytest.mark.interop
@needs_circomlibjs
def test_circomlibjs_agrees_for_every_arity() -> None:
    vectors = [v for n in P.ALL_ARITIES for v in get_vectors(n, 2, seed=5)]
    js = run_circomlibjs(vectors)
    for name, fn in P.IMPLEMENTATIONS.items():
        ours = [fn(v) for v in vectors if len(v) in P.ARITIES[name]]
        for js_name, theirs in js.items():
            expected = [h for v, h in zip(vectors, theirs) if len(v) in P.ARITIES[name]]
            assert ours == expected, f"{name} differs from circomlibjs {js_name}"


# ---- constants ----


@pytest.mark.interop
@needs_circomlibjs
def test_constants_file_regenerates_from_circomlibjs(tmp_path: Path) -> None:
    out = tmp_path / "poseidon_constants.json"
    subprocess.run(["node", str(ROOT / "scripts" / "gen_poseidon_constants.mjs"), str(out)], check=True, cwd=ROOT, timeout=120, capture_output=True)
    assert out.read_bytes() == CONSTANTS.read_bytes()


def test_constants_shapes() -> None:
    assert P.MAX_INPUTS == 16 and sorted(P.PARAMS) == list(range(2, 18))
    assert P.CONSTANTS_SOURCE["package"] == "circomlibjs" and P.CONSTANTS_SOURCE["version"] == "0.1.7"
    p = P.get_params(2)
    assert (p.t, p.n_rounds_f, p.n_rounds_p) == (3, 8, 57)


@pytest.mark.parametrize(
    "tamper,message",
    [
        (lambda raw: raw["reference"]["C"][1].pop(), "t=3: C has"),
        (lambda raw: raw["optimized"]["S"][0].append("0x1"), "t=2: S has"),
        (lambda raw: raw["optimized"]["P"][2].pop(), "t=4: P is not a 4x4 matrix"),
        (lambda raw: raw["reference"]["M"].pop(), "reference M has 15 widths, expected 16"),
        (lambda raw: raw["optimized"]["M"][0][0].__setitem__(1, "0x2"), "not the reference M transposed"),
        (lambda raw: raw["optimized"]["C"][5].__setitem__(0, hex(P.R)), r"t=7: a constant is not in \[0, r\)"),
        (lambda raw: raw.__setitem__("n_rounds_f", 7), "n_rounds_f must be a positive even number"),
    ],
)
def test_invalid_constants_are_refused(tamper, message: str) -> None:
    raw = copy.deepcopy(json.loads(CONSTANTS.read_text()))
    tamper(raw)
    with pytest.raises(P.PoseidonConstantsError, match=message):
        P.load_params(raw)


# ---- invalid input ----

INVALID = [
    ([], "Poseidon takes 1 to 16 inputs, got 0"),
    ([1] * 17, "Poseidon takes 1 to 16 inputs, got 17"),
    ([1, P.R], r"Poseidon input 1 = \d+ is not a field element: it must be in \[0, r\)"),
    ([-1, 2], r"Poseidon input 0 = -1 is not a field element"),
    ([1, True], "Poseidon input 1 must be an int, got bool"),
    ([1.0, 2], "Poseidon input 0 must be an int, got float"),
    (["1", 2], "Poseidon input 0 must be an int, got str"),
    ("12", "Poseidon inputs must be a sequence of ints, got str"),
    (b"\x01\x02", "Poseidon inputs must be a sequence of ints, got bytes"),
    ({1, 2}, "Poseidon inputs must be a sequence of ints, got set"),
    (None, "Poseidon inputs must be a sequence of ints, got NoneType"),
]


@pytest.mark.parametrize("name", list(P.IMPLEMENTATIONS) + ["default"])
@pytest.mark.parametrize("inputs,message", INVALID)
def test_invalid_inputs(name: str, inputs, message: str) -> None:
    fn = P.poseidon if name == "default" else P.IMPLEMENTATIONS[name]
    with pytest.raises(ValueError, match=message):
        fn(inputs)


needs_light = pytest.mark.skipif("light" not in P.IMPLEMENTATIONS, reason="light-poseidon 0.1.1 is not installed")


@needs_light
@pytest.mark.parametrize("n", [13, 16])
def test_invalid_light_arity(n: int) -> None:
    with pytest.raises(ValueError, match=f"light-poseidon hashes 1 to 12 inputs, got {n}"):
        P.poseidon_light([1] * n)


@needs_light
def test_light_hasher_refuses_non_field_elements_itself() -> None:
    # the Rust hasher does not reduce silently either (light-poseidon-python 0.1.10 did)
    hasher = P._LightHasher(2)
    with pytest.raises(ValueError, match="larger than the modulus"):
        hasher.hash_bytes_be([P.R.to_bytes(32, "big"), (1).to_bytes(32, "big")])
    with pytest.raises(ValueError, match="Invalid width"):
        P._LightHasher(P.LIGHT_MAX_INPUTS + 1)


@needs_light
def test_light_hashers_shared_across_threads() -> None:
    # one Hasher per width serves the whole process: concurrent calls must neither fail nor mix states
    vectors = [v for n in (2, 4, 5) for v in get_vectors(n, 10, seed=6)]
    expected = [P.poseidon_gmpy2(v) if "gmpy2" in P.IMPLEMENTATIONS else P.poseidon_unrolled(v) for v in vectors]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: [P.poseidon_light(v) for v in vectors], range(8)))
    assert results == [expected] * 8


def test_default_dispatch() -> None:
    assert set(P.FASTEST_BY_ARITY) == set(P.ALL_ARITIES)
    assert P.FASTEST_PAIR_NAME == P.FASTEST_BY_ARITY[2]
    for n, name in P.FASTEST_BY_ARITY.items():
        assert name in P.IMPLEMENTATIONS and n in P.ARITIES[name]
    if "native" in P.IMPLEMENTATIONS:
        # the C extension is the fastest at every input count (benchmarks/poseidon_bench.py)
        assert set(P.FASTEST_BY_ARITY.values()) == {"native"}
    elif "light" in P.IMPLEMENTATIONS:
        # the account tree's nodes (4), EdDSA's challenge (5) and the key id (2) run in Rust
        assert all(P.FASTEST_BY_ARITY[n] == "light" for n in (2, 4, 5))
        assert all(P.FASTEST_BY_ARITY[n] != "light" for n in range(P.LIGHT_MAX_INPUTS + 1, P.MAX_INPUTS + 1))


@pytest.mark.parametrize(
    "left,right,message",
    [
        (P.R, 0, "Poseidon input 0 = .* is not a field element"),
        (0, 2**256, "Poseidon input 1 = .* is not a field element"),
        (0, -5, "Poseidon input 1 = -5 is not a field element"),
        (False, 1, "Poseidon input 0 must be an int, got bool"),
        (1, b"\x00" * 32, "Poseidon input 1 must be an int, got bytes"),
    ],
)
def test_invalid_poseidon2(left, right, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        P.poseidon2(left, right)


def test_get_params_refuses_unknown_arities() -> None:
    for n in (0, 17):
        with pytest.raises(ValueError, match=f"Poseidon takes 1 to 16 inputs, got {n}"):
            P.get_params(n)
