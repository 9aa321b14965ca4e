"""`rollup proof verify VK PUBLIC PROOF`: exit codes, messages and --json output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rollup.cli.main import app

DATA = Path(__file__).parent / "data" / "groth16" / "mul_add"
VK, PUBLIC, PROOF = DATA / "verification_key.json", DATA / "public_0.json", DATA / "proof_0.json"
runner = CliRunner()


def invoke(*args: str | Path) -> object:
    return runner.invoke(app, ["proof", "verify", *map(str, args)])


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_valid_proof_exits_0() -> None:
    result = invoke(VK, PUBLIC, PROOF)
    assert result.exit_code == 0, result.output
    assert "OK!" in result.output


def test_valid_proof_json() -> None:
    result = invoke(VK, PUBLIC, PROOF, "--json")
    assert result.exit_code == 0
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is True and verdict["status"] == "ok" and verdict["reason"] is None
    assert verdict["curve"] == "bn128" and verdict["n_public"] == 2


def test_invalid_other_public_inputs_exits_1(tmp_path: Path) -> None:
    public = write_json(tmp_path / "public.json", json.loads((DATA / "public_1.json").read_text()))
    result = invoke(VK, public, PROOF, "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict == verdict | {"valid": False, "status": "invalid", "reason": "pairing_check_failed"}
    assert "error: INVALID: proof does not verify" in result.stderr


def test_invalid_malformed_coordinate_names_the_field(tmp_path: Path) -> None:
    proof = json.loads(PROOF.read_text())
    proof["pi_b"][1][0] = "0x1234"
    result = invoke(VK, PUBLIC, write_json(tmp_path / "proof.json", proof), "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["status"] == "malformed" and verdict["reason"] == "bad_format"
    assert verdict["message"] == "proof.json: pi_b[1][0]: not a decimal string: '0x1234'"


def test_invalid_point_off_curve_reason(tmp_path: Path) -> None:
    proof = json.loads(PROOF.read_text())
    proof["pi_a"][1] = str(int(proof["pi_a"][1]) + 1)
    result = invoke(VK, PUBLIC, write_json(tmp_path / "proof.json", proof))
    assert result.exit_code == 1
    assert "MALFORMED (point_not_on_curve): proof.a is not on the G1 curve" in result.stderr
    assert "Traceback" not in result.output


def test_invalid_public_input_aliased(tmp_path: Path) -> None:
    from verifier.curve import BN254

    public = json.loads(PUBLIC.read_text())
    public[0] = str(int(public[0]) + BN254.r)
    result = invoke(VK, write_json(tmp_path / "public.json", public), PROOF, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reason"] == "input_not_in_field"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("protocol", "plonk", "verification_key.json: protocol: expected \"groth16\", got 'plonk'"),
        ("curve", "secp256k1", "verification_key.json: curve: unknown curve 'secp256k1'"),
        ("nPublic", 3, "verification_key.json: IC: nPublic is 3, so IC needs 4 points, got 3"),
    ],
)
def test_invalid_key_header(tmp_path: Path, field: str, value: object, message: str) -> None:
    vk = json.loads(VK.read_text())
    vk[field] = value
    result = invoke(write_json(tmp_path / "vk.json", vk), PUBLIC, PROOF, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["message"].startswith(message)


def test_missing_file_exits_1(tmp_path: Path) -> None:
    result = invoke(VK, PUBLIC, tmp_path / "nope.json")
    assert result.exit_code == 1
    assert "error: file not found" in result.stderr


def test_not_json_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "proof.json"
    bad.write_text("{not json")
    result = invoke(VK, PUBLIC, bad, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["message"].startswith("proof.json: not valid JSON")


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """Through `main()`, as a user runs it: exit code 1 and the reason on stderr, no traceback."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "rollup.cli.main", "proof", "verify", str(VK)]
    ok = subprocess.run([*cmd, str(PUBLIC), str(PROOF)], capture_output=True, text=True)
    assert ok.returncode == 0 and "OK!" in ok.stdout
    bad = subprocess.run([*cmd, str(DATA / "public_1.json"), str(PROOF)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "INVALID" in bad.stderr and "Traceback" not in bad.stderr


def test_backend_option_verifies_on_each_backend(backend_name: str, tmp_path: Path) -> None:
    assert invoke(VK, PUBLIC, PROOF, "--backend", backend_name).exit_code == 0
    other = write_json(tmp_path / "public.json", json.loads((DATA / "public_1.json").read_text()))
    result = invoke(VK, other, PROOF, "--backend", backend_name, "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["reason"] == "pairing_check_failed"


def test_invalid_backend_option_is_one_line() -> None:
    result = invoke(VK, PUBLIC, PROOF, "--backend", "gpu")
    assert result.exit_code == 1
    assert "unknown backend 'gpu'; choose one of: py_ecc, mcl" in result.output and "Traceback" not in result.output


def test_invalid_backend_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLUP_BACKEND", "gpu")
    result = invoke(VK, PUBLIC, PROOF)
    assert result.exit_code == 1 and "unknown backend 'gpu'" in result.output
