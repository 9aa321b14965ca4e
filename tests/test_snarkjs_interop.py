"""snarkjs interop: our JSON and binary files against snarkjs 0.7.6, in both directions.

The first part (file formats) needs no node. The tests marked `interop` run snarkjs from
node_modules (CI runs `npm ci`); they skip only when node_modules/.bin/snarkjs is missing.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from prover import gadgets
from prover.export import ExportError, encode_r1cs, encode_wtns, write_r1cs, write_wtns
from prover.groth16 import prove
from prover.r1cs import ConstraintSystem
from prover.setup import setup
from verifier.curve import BLS12_381, BN254, Curve
from verifier.groth16 import prepare_verifying_key, verify_proof
from verifier.snarkjs import (
    SnarkjsFormatError,
    format_proof,
    format_verifying_key,
    is_alphabeta_consistent,
    load_proof,
    load_public_inputs,
    load_verifying_key,
    parse_proof,
    parse_public_inputs,
    parse_verifying_key,
    write_proof,
    write_public_inputs,
    write_verifying_key,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "groth16"
SNARKJS = ROOT / "node_modules" / ".bin" / "snarkjs"
PTAU_POWER = 6  # 64 constraints: enough for the circuits here; prepare phase2 grows fast with it

needs_snarkjs = pytest.mark.skipif(not SNARKJS.exists(), reason="snarkjs not installed: run `npm ci` in the repository root")


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def build_trading_circuit(curve: Curve = BN254, price: int = 1234, size: int = 7, limit: int = 9000) -> ConstraintSystem:
    """A small circuit with the gadgets the rollup uses: notional = price * size <= limit, 16-bit ranges."""
    cs = ConstraintSystem(curve)
    p = cs.public_input(price, "price")
    lim = cs.public_input(limit, "limit")
    s = cs.private(size, "size")
    notional = gadgets.mul(cs, p, s)
    gadgets.range_check(cs, s, 16)
    gadgets.assert_le(cs, notional, lim, 16)
    flag = gadgets.is_zero(cs, s)
    gadgets.select(cs, flag, p, notional)
    return cs


# --- JSON formats (no node needed) -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mul_add", "square_mul", "bls12381_mul_add"])
def test_snarkjs_files_round_trip_exactly(name: str) -> None:
    """Parsing snarkjs's files and writing them back gives the same JSON, vk_alphabeta_12 included."""
    folder = DATA / name
    vk_obj, proof_obj = read(folder / "verification_key.json"), read(folder / "proof_0.json")
    assert format_verifying_key(parse_verifying_key(vk_obj)) == vk_obj
    assert format_proof(parse_proof(proof_obj)) == proof_obj
    assert [str(x) for x in parse_public_inputs(read(folder / "public_0.json"))] == read(folder / "public_0.json")


def test_alphabeta_cross_check() -> None:
    vk_obj = read(DATA / "mul_add" / "verification_key.json")
    assert is_alphabeta_consistent(vk_obj)
    vk_obj["vk_alphabeta_12"][1][2][0] = "1"  # square_mul's would not do: alpha, beta come from the ptau
    assert not is_alphabeta_consistent(vk_obj)
    # on plain reads the value is ignored: the verifier recomputes e(alpha, beta)
    parse_verifying_key(vk_obj)


def test_our_files_round_trip(tmp_path: Path) -> None:
    cs = build_trading_circuit(BLS12_381)
    pk = setup(cs, seed="round-trip")
    proof = prove(pk, cs, reproducible_seed=1)
    write_verifying_key(tmp_path / "vk.json", pk.vk)
    write_proof(tmp_path / "proof.json", proof)
    write_public_inputs(tmp_path / "public.json", cs.public_inputs)
    vk = load_verifying_key(tmp_path / "vk.json")
    assert format_verifying_key(vk) == read(tmp_path / "vk.json")
    assert verify_proof(prepare_verifying_key(vk), load_proof(tmp_path / "proof.json"), load_public_inputs(tmp_path / "public.json"))


def test_identity_written_as_snarkjs_does() -> None:
    vk = parse_verifying_key(read(DATA / "mul_add" / "verification_key.json"))
    obj = format_verifying_key(type(vk)(vk.alpha_g1, vk.beta_g2, vk.gamma_g2, vk.delta_g2, (vk.gamma_abc_g1[0], BN254.Z1, vk.gamma_abc_g1[2])))
    assert obj["IC"][1] == ["0", "1", "0"]
    assert BN254.is_inf(parse_verifying_key(obj).gamma_abc_g1[1])
    proof = read(DATA / "mul_add" / "proof_0.json")
    proof["pi_b"] = [["0", "0"], ["1", "0"], ["0", "0"]]
    assert BN254.is_inf(parse_proof(proof).b)


def mutated(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    obj = json.loads(json.dumps(obj))
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


Q = str(BN254.q)
PROOF_CASES = [
    (("pi_a", 0), "12a", "proof.json: pi_a[0]: not a decimal string: '12a'"),
    (("pi_a", 0), "-5", "proof.json: pi_a[0]: not a decimal string: '-5'"),
    (("pi_a", 0), " 5", "proof.json: pi_a[0]: not a decimal string: ' 5'"),
    (("pi_a", 1), 5, "proof.json: pi_a[1]: expected a decimal string, got int 5"),
    (("pi_a", 1), Q, "proof.json: pi_a[1]: coordinate is not below the field modulus q of bn128"),
    (("pi_b", 0, 1), Q, "proof.json: pi_b[0][1]: coordinate is not below the field modulus q of bn128"),
    (("pi_a", 2), "2", "proof.json: pi_a[2]: z must be \"1\""),
    (("pi_b", 2), ["1", "1"], "proof.json: pi_b[2]: z must be [\"1\", \"0\"]"),
    (("pi_c",), ["1", "2"], "proof.json: pi_c: expected a list of 3 items"),
    (("pi_b", 1), ["1", "2", "3"], "proof.json: pi_b[1]: expected a list of 2 items"),
    (("protocol",), "plonk", "proof.json: protocol: expected \"groth16\", got 'plonk'"),
    (("curve",), "bn256x", "proof.json: curve: unknown curve 'bn256x'"),
    (("pi_c",), KeyError, "proof.json: missing field 'pi_c'"),
]


@pytest.mark.parametrize(("path", "value", "message"), PROOF_CASES, ids=[c[2][12:60] for c in PROOF_CASES])
def test_invalid_proof_json(path: tuple[Any, ...], value: Any, message: str) -> None:
    obj = mutated(read(DATA / "mul_add" / "proof_0.json"), path, value)
    with pytest.raises(SnarkjsFormatError) as info:
        parse_proof(obj)
    assert str(info.value).startswith(message)
    assert info.value.reason == "bad_format"


VK_CASES = [
    (("nPublic",), 1, "verification_key.json: IC: nPublic is 1, so IC needs 2 points, got 3"),
    (("nPublic",), "2", "verification_key.json: nPublic: expected a non-negative integer, got '2'"),
    (("IC", 2, 0), "x", "verification_key.json: IC[2][0]: not a decimal string"),
    (("vk_gamma_2", 1, 0), Q, "verification_key.json: vk_gamma_2[1][0]: coordinate is not below"),
    (("vk_alphabeta_12", 1, 2), ["1"], "verification_key.json: vk_alphabeta_12[1][2]: expected a list of 2 items"),
    (("vk_delta_2",), KeyError, "verification_key.json: missing field 'vk_delta_2'"),
    (("protocol",), "fflonk", "verification_key.json: protocol: expected \"groth16\""),
]


@pytest.mark.parametrize(("path", "value", "message"), VK_CASES, ids=[c[2][23:70] for c in VK_CASES])
def test_invalid_verifying_key_json(path: tuple[Any, ...], value: Any, message: str) -> None:
    obj = mutated(read(DATA / "mul_add" / "verification_key.json"), path, value)
    with pytest.raises(SnarkjsFormatError) as info:
        parse_verifying_key(obj)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("obj", "message"),
    [({"a": 1}, "public.json: expected a JSON array"), (["1", 2], "public.json: [1]: expected a decimal string"),
     (["1", "2.0"], "public.json: [1]: not a decimal string")],
)
def test_invalid_public_json(obj: Any, message: str) -> None:
    with pytest.raises(SnarkjsFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_public_inputs(obj)


# --- binary exports (no node needed) ---------------------------------------------------------------


def parse_sections(data: bytes, magic: bytes) -> tuple[int, dict[int, bytes]]:
    assert data[:4] == magic
    version, n_sections = struct.unpack_from("<II", data, 4)
    pos, sections = 12, {}
    for _ in range(n_sections):
        kind, size = struct.unpack_from("<IQ", data, pos)
        sections[kind] = data[pos + 12 : pos + 12 + size]
        pos += 12 + size
    assert pos == len(data)
    return version, sections


def test_r1cs_layout() -> None:
    cs = build_trading_circuit()
    version, sections = parse_sections(encode_r1cs(cs), b"r1cs")
    assert version == 1 and sorted(sections) == [1, 2, 3]
    n8, = struct.unpack_from("<I", sections[1])
    assert n8 == 32 and int.from_bytes(sections[1][4:36], "little") == BN254.r
    n_wires, n_pub_out, n_pub_in, n_prv_in, n_labels, n_constraints = struct.unpack_from("<IIIIQI", sections[1], 36)
    assert (n_wires, n_pub_out, n_pub_in, n_prv_in, n_labels, n_constraints) == (
        cs.n_vars, 0, cs.n_public, 0, cs.n_vars, len(cs.constraints))
    assert struct.unpack(f"<{cs.n_vars}Q", sections[3]) == tuple(range(cs.n_vars))
    # the first linear combination, decoded back
    n_terms, = struct.unpack_from("<I", sections[2])
    a0 = {struct.unpack_from("<I", sections[2], 4 + 36 * i)[0]: int.from_bytes(sections[2][8 + 36 * i : 40 + 36 * i], "little")
          for i in range(n_terms)}
    assert a0 == {w: c for w, c in cs.constraints[0][0].items() if c}


def test_wtns_layout() -> None:
    cs = build_trading_circuit(BLS12_381)
    version, sections = parse_sections(encode_wtns(cs), b"wtns")
    assert version == 2
    n8, = struct.unpack_from("<I", sections[1])
    assert n8 == 32 and int.from_bytes(sections[1][4:36], "little") == BLS12_381.r
    assert struct.unpack_from("<I", sections[1], 36) == (cs.n_vars,)
    assert [int.from_bytes(sections[2][i : i + 32], "little") for i in range(0, len(sections[2]), 32)] == cs.witness


def tiny(**changes: Any) -> SimpleNamespace:
    base = dict(curve=BN254, n_public=1, n_vars=3, constraints=[({1: 1}, {2: 1}, {0: 6})], witness=[1, 2, 3])
    return SimpleNamespace(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "encode", "message"),
    [
        ({"witness": [2, 2, 3]}, encode_wtns, "witness\\[0\\] must be 1"),
        ({"witness": [1, 2]}, encode_wtns, "witness has 2 values for 3 wires"),
        ({"witness": [1, 2, BN254.r]}, encode_wtns, "witness value of wire 2 is not in"),
        ({"constraints": [({1: BN254.r}, {2: 1}, {0: 6})]}, encode_r1cs, "coefficient of wire 1 is not in"),
        ({"constraints": [({3: 1}, {2: 1}, {0: 6})]}, encode_r1cs, "constraint refers to wire 3"),
        ({"n_public": 3}, encode_r1cs, "n_public 3 must be below n_vars 3"),
    ],
)
def test_invalid_export(changes: dict[str, Any], encode: Any, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        encode(tiny(**changes))


# --- with snarkjs ---------------------------------------------------------------------------------------


def snarkjs(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SNARKJS), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def ptau(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny powers-of-tau file, made once per session with fixed entropy."""
    d = tmp_path_factory.mktemp("ptau")
    for args in (
        ("powersoftau", "new", "bn128", str(PTAU_POWER), "p0.ptau"),
        ("powersoftau", "contribute", "p0.ptau", "p1.ptau", "-e=interop test entropy", "-name=test"),
        ("powersoftau", "prepare", "phase2", "p1.ptau", "final.ptau"),
    ):
        result = snarkjs(*args, cwd=d)
        assert result.returncode == 0, result.stdout + result.stderr
    return d / "final.ptau"


@pytest.mark.interop
@needs_snarkjs
def test_snarkjs_accepts_our_r1cs_and_wtns(tmp_path: Path) -> None:
    cs = build_trading_circuit()
    write_r1cs(cs, tmp_path / "c.r1cs")
    write_wtns(cs, tmp_path / "c.wtns")
    info = snarkjs("r1cs", "info", "c.r1cs", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert f"# of Constraints: {len(cs.constraints)}" in info.stdout
    assert f"# of Public Inputs: {cs.n_public}" in info.stdout and "Curve: bn-128" in info.stdout
    check = snarkjs("wtns", "check", "c.r1cs", "c.wtns", cwd=tmp_path)
    assert "WITNESS IS CORRECT" in check.stdout, check.stdout + check.stderr
    # a witness of a false statement: snarkjs must see it (it exits 0 either way, so read its output)
    wrong = SimpleNamespace(curve=BN254, n_vars=cs.n_vars, witness=[1, 1235, *cs.witness[2:]])
    write_wtns(wrong, tmp_path / "wrong.wtns")
    assert "WITNESS IS NOT CORRECT" in snarkjs("wtns", "check", "c.r1cs", "wrong.wtns", cwd=tmp_path).stdout


@pytest.mark.interop
@needs_snarkjs
def test_our_verifier_accepts_snarkjs_proof_of_our_circuit(tmp_path: Path, ptau: Path) -> None:
    cs = build_trading_circuit()
    write_r1cs(cs, tmp_path / "c.r1cs")
    write_wtns(cs, tmp_path / "c.wtns")
    for args in (
        ("groth16", "setup", "c.r1cs", ptau, "c0.zkey"),
        ("zkey", "contribute", "c0.zkey", "c1.zkey", "-e=interop zkey entropy", "-name=test"),
        ("zkey", "beacon", "c1.zkey", "c.zkey", "0102030405060708090a0b0c0d0e0f10", "10"),
        ("zkey", "export", "verificationkey", "c.zkey", "vk.json"),
        ("groth16", "prove", "c.zkey", "c.wtns", "proof.json", "public.json"),
    ):
        result = snarkjs(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    vk_obj = read(tmp_path / "vk.json")
    assert is_alphabeta_consistent(vk_obj)  # snarkjs's e(alpha, beta), in its tower, equals ours
    pvk = prepare_verifying_key(parse_verifying_key(vk_obj))
    proof, public = load_proof(tmp_path / "proof.json"), load_public_inputs(tmp_path / "public.json")
    assert public == cs.public_inputs
    assert verify_proof(pvk, proof, public) is True
    assert verify_proof(pvk, proof, [public[0] + 1, public[1]]) is False


@pytest.mark.interop
@needs_snarkjs
@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=["bn128", "bls12381"])
def test_snarkjs_verifies_our_proof(tmp_path: Path, curve: Curve) -> None:
    cs = build_trading_circuit(curve)
    pk = setup(cs, seed=f"interop-{curve.name}")
    write_verifying_key(tmp_path / "vk.json", pk.vk)
    write_proof(tmp_path / "proof.json", prove(pk, cs, rng=random.Random(5)))
    write_public_inputs(tmp_path / "public.json", cs.public_inputs)
    ok = snarkjs("groth16", "verify", "vk.json", "public.json", "proof.json", cwd=tmp_path)
    assert ok.returncode == 0 and "OK!" in ok.stdout, ok.stdout + ok.stderr
    # tampered public input
    write_public_inputs(tmp_path / "public.json", [cs.public_inputs[0] + 1, *cs.public_inputs[1:]])
    bad = snarkjs("groth16", "verify", "vk.json", "public.json", "proof.json", cwd=tmp_path)
    assert bad.returncode != 0 and "OK!" not in bad.stdout
    # tampered proof (C replaced by A: still valid points)
    write_public_inputs(tmp_path / "public.json", cs.public_inputs)
    proof_obj = read(tmp_path / "proof.json")
    proof_obj["pi_c"] = proof_obj["pi_a"]
    (tmp_path / "proof.json").write_text(json.dumps(proof_obj))
    bad = snarkjs("groth16", "verify", "vk.json", "public.json", "proof.json", cwd=tmp_path)
    assert bad.returncode != 0 and "OK!" not in bad.stdout
