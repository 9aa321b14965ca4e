"""The C extension verifier._poseidon (verifier/_poseidon.c): its own entry points, edge inputs, init, and the fallback without it.

The parameterised suite in tests/test_poseidon.py runs over `poseidon_native` too (it is in
`IMPLEMENTATIONS` whenever the extension imports), against the reference and circomlibjs.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from verifier import poseidon as P

ROOT = Path(__file__).resolve().parent.parent
native = P._native
needs_native = pytest.mark.skipif(native is None, reason="verifier._poseidon is not built")
INIT_ARGS = [(p.t, p.n_rounds_f, p.n_rounds_p, p.C_opt, p.S, p.M_opt, p.P) for p in P.PARAMS.values()]


def has_c_compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def test_extension_is_built_where_a_compiler_is() -> None:
    # setup.py's Extension is optional: only a machine without a C compiler may lack it
    if not has_c_compiler():
        pytest.skip("no C compiler: the extension is optional")
    assert native is not None, "verifier._poseidon did not build: run `pip install -e .` again and read its output"
    assert P.IMPLEMENTATIONS["native"] is P.poseidon_native


@needs_native
@pytest.mark.parametrize("n", P.ALL_ARITIES)
def test_random_inputs_match_reference(n: int) -> None:
    rng = random.Random(n)
    vectors = [[rng.randrange(P.R) for _ in range(n)] for _ in range(8)]
    vectors += [[0] * n, [P.R - 1] * n, [P.R - 1 - i for i in range(n)], [2**253 + i for i in range(n)]]
    expected = [P.poseidon_reference(v) for v in vectors]
    assert [native.hash(v) for v in vectors] == expected
    assert [native.hash(tuple(v)) for v in vectors] == expected
    assert native.hash_many(vectors) == expected
    assert P.poseidon_many(vectors) == expected


@needs_native
def test_other_sequences_and_int_subclasses() -> None:
    class Fe(int):
        pass

    expected = P.poseidon_reference([1, 2, 3])
    assert P.poseidon_native(range(1, 4)) == expected  # any Sequence through the Python entry point
    assert P.poseidon(range(1, 4)) == expected
    assert native.hash([Fe(1), Fe(2), Fe(3)]) == expected
    assert P.poseidon_many([range(1, 4), (1, 2, 3)]) == [expected, expected]
    assert native.hash_many([]) == [] and P.poseidon_many([]) == []


INVALID = [
    ([], "Poseidon takes 1 to 16 inputs, got 0"),
    ([1] * 17, "Poseidon takes 1 to 16 inputs, got 17"),
    ([1, P.R], r"Poseidon input 1 = \d+ is not a field element: it must be in \[0, r\), r = " + str(P.R)),
    ([2**256], r"Poseidon input 0 = \d+ is not a field element"),
    ([2**1000, 1], r"Poseidon input 0 = \d+ is not a field element"),
    ([5, -1], r"Poseidon input 1 = -1 is not a field element"),
    ([-(2**300)], r"Poseidon input 0 = -\d+ is not a field element"),
    ([1, True], "Poseidon input 1 must be an int, got bool"),
    ([1.0, 2], "Poseidon input 0 must be an int, got float"),
    ([1, "2"], "Poseidon input 1 must be an int, got str"),
    ([None], "Poseidon input 0 must be an int, got NoneType"),
    ("12", "Poseidon inputs must be a list or tuple of ints, got str"),
    (b"\x01\x02", "Poseidon inputs must be a list or tuple of ints, got bytes"),
    ({1, 2}, "Poseidon inputs must be a list or tuple of ints, got set"),
    (range(1, 3), "Poseidon inputs must be a list or tuple of ints, got range"),
    (None, "Poseidon inputs must be a list or tuple of ints, got NoneType"),
]


@needs_native
@pytest.mark.parametrize("inputs,message", INVALID)
def test_invalid_inputs_to_the_extension(inputs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        native.hash(inputs)
    with pytest.raises(ValueError, match=message):
        native.hash_many([[1, 2], inputs])


@needs_native
def test_hash_many_refuses_a_non_sequence() -> None:
    with pytest.raises(TypeError, match="hash_many takes a sequence of input sequences"):
        native.hash_many(5)


@needs_native
@pytest.mark.parametrize(
    "modulus",
    [P.R + 1, 2**256 + 1, 2**254 + 1, 2**127 - 1, -P.R, 0, float(P.R), "21888242871839275222246405745257275088548364400416034343698204186575808495617"],
)
def test_init_refuses_a_bad_modulus_and_keeps_its_tables(modulus) -> None:
    with pytest.raises(ValueError, match=r"the modulus must be an odd int in \(2\^192, 2\^254\)"):
        native.init(modulus, INIT_ARGS)
    assert native.hash([1, 2]) == P.poseidon_reference([1, 2])


@needs_native
@pytest.mark.parametrize(
    "tamper,message",
    [
        (lambda w: w.pop(), "no constants for t=17"),
        (lambda w: w.append(w[0]), "width 16: t=2, .* is not a width this module takes"),
        (lambda w: w.__setitem__(1, (3, 8, 57, w[1][3][:-1], *w[1][4:])), "t=3: C has 80 constants, expected 81"),
        (lambda w: w.__setitem__(0, (2, 8, 56, w[0][3], (*w[0][4], 1), *w[0][5:])), "t=2: S has 169 constants, expected 168"),
        (lambda w: w.__setitem__(2, (*w[2][:6], w[2][6][:3])), "t=4: P is not a 4x4 matrix"),
        (lambda w: w.__setitem__(0, (2, 8, 56, (P.R, *w[0][3][1:]), *w[0][4:])), r"Poseidon C 0 = \d+ is not a field element"),
        (lambda w: w.__setitem__(0, (2, 7, 56, *w[0][3:])), "t=2, n_rounds_f=7, n_rounds_p=56 is not a width"),
        (lambda w: w.__setitem__(3, list(w[3])), r"width 3 must be a tuple \(t, n_rounds_f, n_rounds_p, C, S, M, P\), got list"),
    ],
)
def test_init_refuses_bad_tables_and_keeps_the_old_ones(tamper, message: str) -> None:
    widths = list(INIT_ARGS)
    tamper(widths)
    with pytest.raises(ValueError, match=message):
        native.init(P.R, widths)
    assert native.hash([1, 2, 3, 4]) == P.poseidon_reference([1, 2, 3, 4])


@needs_native
def test_init_again_with_the_same_tables() -> None:
    native.init(P.R, INIT_ARGS)
    assert native.hash([1, 2]) == P.poseidon_reference([1, 2])


def test_without_the_extension() -> None:
    # a machine without a C compiler: verifier.poseidon imports, leaves native out, hashes alike
    code = """
import sys
sys.modules["verifier._poseidon"] = None  # import fails as when the extension was not built
from verifier import poseidon as P
assert P._native is None and "native" not in P.IMPLEMENTATIONS
assert "native" not in P.FASTEST_BY_ARITY.values()
assert P.poseidon([1, 2]) == P.poseidon2(1, 2) == P.poseidon_reference([1, 2])
assert P.poseidon_many([[1, 2], [3] * 16]) == [P.poseidon_reference([1, 2]), P.poseidon_reference([3] * 16)]
assert P.get_unchecked_hash(5)((1, 2, 3, 4, 5)) == P.poseidon_reference([1, 2, 3, 4, 5])
try:
    P.poseidon_native([1, 2])
except RuntimeError as exc:
    assert "needs the C extension" in str(exc)
else:
    raise AssertionError("poseidon_native ran without the extension")
from verifier import eddsa
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
