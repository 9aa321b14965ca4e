"""snarkjs's Groth16 JSON: verification_key.json, proof.json and public.json, read strictly.

Numbers are decimal strings. G1 is `[x, y, "1"]`, G2 is `[[x0, x1], [y0, y1], ["1", "0"]]` with
x0 the real part (py_ecc's FQ2([x0, x1]) is x0 + x1*i, the same order). snarkjs writes the
identity as `["0", "1", "0"]` (G1) and `[["0", "0"], ["1", "0"], ["0", "0"]]` (G2); those are the
only accepted forms with z != 1.

Parsing checks the shapes and that every coordinate is a decimal string below q; whether a point
is on its curve and in its subgroup is the verifier's check (`verifier.groth16`), so each rejection
keeps its own reason. Public inputs are parsed as integers; their range is also checked by the
verifier, which knows r.

`vk_alphabeta_12` is derived data: on read its shape and ranges are checked and its value ignored
(`prepare_verifying_key` recomputes e(alpha, beta)); `is_alphabeta_consistent` cross-checks it on
demand (one pairing). On write it is computed as snarkjs does (see `compute_snarkjs_alphabeta`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verifier.curve import CURVES, Curve, Point
from verifier.groth16 import MalformedInput, Proof, VerifyingKey
from verifier.keccak import keccak256

DECIMAL = re.compile(r"[0-9]{1,200}")


class SnarkjsFormatError(MalformedInput):
    """A snarkjs JSON file that does not have the expected layout; the message names the field."""

    reason = "bad_format"


# --- scalars and points -------------------------------------------------------------------------


def parse_decimal(value: Any, where: str) -> int:
    # snarkjs writes every number as a decimal string
    if not isinstance(value, str):
        raise SnarkjsFormatError(f"{where}: expected a decimal string, got {type(value).__name__} {value!r}")
    # digits only: no sign, hex, spaces or exponent
    if not DECIMAL.fullmatch(value):
        raise SnarkjsFormatError(f"{where}: not a decimal string: {value[:80]!r}")
    return int(value)


def parse_coordinate(value: Any, curve: Curve, where: str) -> int:
    n = parse_decimal(value, where)
    # a coordinate is a canonical element of Fq
    if n >= curve.q:
        raise SnarkjsFormatError(f"{where}: coordinate is not below the field modulus q of {curve.name}")
    return n


def require_list(value: Any, length: int, where: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise SnarkjsFormatError(f"{where}: expected a list of {length} items, got {json.dumps(value)[:80]}")
    return value


def parse_g1(value: Any, curve: Curve, where: str) -> Point:
    x, y, z = (parse_coordinate(c, curve, f"{where}[{i}]") for i, c in enumerate(require_list(value, 3, where)))
    if (x, y, z) == (0, 1, 0):
        return curve.Z1
    # snarkjs writes affine points: z is 1 except for the identity
    if z != 1:
        raise SnarkjsFormatError(f"{where}[2]: z must be \"1\" (or the identity [\"0\", \"1\", \"0\"]), got {z}")
    return (curve.FQ(x), curve.FQ(y), curve.FQ.one())


def parse_fq2(value: Any, curve: Curve, where: str) -> tuple[int, int]:
    real, imaginary = (parse_coordinate(c, curve, f"{where}[{i}]") for i, c in enumerate(require_list(value, 2, where)))
    return real, imaginary


def parse_g2(value: Any, curve: Curve, where: str) -> Point:
    x, y, z = (parse_fq2(c, curve, f"{where}[{i}]") for i, c in enumerate(require_list(value, 3, where)))
    if (x, y, z) == ((0, 0), (1, 0), (0, 0)):
        return curve.Z2
    # snarkjs writes affine points: z is 1 + 0i except for the identity
    if z != (1, 0):
        raise SnarkjsFormatError(f"{where}[2]: z must be [\"1\", \"0\"], got {list(z)}")
    return (curve.FQ2(list(x)), curve.FQ2(list(y)), curve.FQ2.one())


def format_g1(point: Point, curve: Curve) -> list[str]:
    if curve.is_inf(point):
        return ["0", "1", "0"]
    x, y = curve.normalize(point)
    return [str(int(x)), str(int(y)), "1"]


def format_g2(point: Point, curve: Curve) -> list[list[str]]:
    if curve.is_inf(point):
        return [["0", "0"], ["1", "0"], ["0", "0"]]
    x, y = curve.normalize(point)
    return [[str(c) for c in x.coeffs], [str(c) for c in y.coeffs], ["1", "0"]]


# --- header fields --------------------------------------------------------------------------------


def parse_curve(obj: dict[str, Any], file: str) -> Curve:
    name = obj.get("curve")
    # only the curves this project implements
    if not isinstance(name, str) or name.lower() not in CURVES:
        raise SnarkjsFormatError(f"{file}: curve: unknown curve {name!r} (expected one of {sorted(CURVES)})")
    return CURVES[name.lower()]


def parse_protocol(obj: dict[str, Any], file: str) -> None:
    # plonk and fflonk files have other fields altogether
    if obj.get("protocol") != "groth16":
        raise SnarkjsFormatError(f"{file}: protocol: expected \"groth16\", got {obj.get('protocol')!r}")


def require_object(obj: Any, file: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SnarkjsFormatError(f"{file}: expected a JSON object, got {type(obj).__name__}")
    for field in fields:
        # every field snarkjs writes and the verifier needs
        if field not in obj:
            raise SnarkjsFormatError(f"{file}: missing field {field!r}")
    return obj


# --- verification_key.json ----------------------------------------------------------------------

VK_FIELDS = ("protocol", "curve", "nPublic", "vk_alpha_1", "vk_beta_2", "vk_gamma_2", "vk_delta_2", "IC")


def parse_verifying_key(obj: Any) -> VerifyingKey:
    file = "verification_key.json"
    obj = require_object(obj, file, VK_FIELDS)
    parse_protocol(obj, file)
    curve = parse_curve(obj, file)
    n_public = obj["nPublic"]
    # a count, written as a JSON number
    if not isinstance(n_public, int) or isinstance(n_public, bool) or n_public < 0:
        raise SnarkjsFormatError(f"{file}: nPublic: expected a non-negative integer, got {n_public!r}")
    ic = obj["IC"]
    # one IC point for the constant wire and one per public input
    if not isinstance(ic, list) or len(ic) != n_public + 1:
        got = len(ic) if isinstance(ic, list) else type(ic).__name__
        raise SnarkjsFormatError(f"{file}: IC: nPublic is {n_public}, so IC needs {n_public + 1} points, got {got}")
    if "vk_alphabeta_12" in obj:
        parse_fq12(obj["vk_alphabeta_12"], curve, f"{file}: vk_alphabeta_12")
    return VerifyingKey(
        alpha_g1=parse_g1(obj["vk_alpha_1"], curve, f"{file}: vk_alpha_1"),
        beta_g2=parse_g2(obj["vk_beta_2"], curve, f"{file}: vk_beta_2"),
        gamma_g2=parse_g2(obj["vk_gamma_2"], curve, f"{file}: vk_gamma_2"),
        delta_g2=parse_g2(obj["vk_delta_2"], curve, f"{file}: vk_delta_2"),
        gamma_abc_g1=tuple(parse_g1(p, curve, f"{file}: IC[{i}]") for i, p in enumerate(ic)),
        curve=curve,
    )


def format_verifying_key(vk: VerifyingKey) -> dict[str, Any]:
    curve = vk.curve
    return {
        "protocol": "groth16",
        "curve": curve.name,
        "nPublic": vk.n_public,
        "vk_alpha_1": format_g1(vk.alpha_g1, curve),
        "vk_beta_2": format_g2(vk.beta_g2, curve),
        "vk_gamma_2": format_g2(vk.gamma_g2, curve),
        "vk_delta_2": format_g2(vk.delta_g2, curve),
        "vk_alphabeta_12": format_fq12(compute_snarkjs_alphabeta(vk), curve),
        "IC": [format_g1(p, curve) for p in vk.gamma_abc_g1],
    }


# --- vk_alphabeta_12: GT in snarkjs's tower and normalisation ------------------------------------
# py_ecc's FQ12 is Fq[w]/(w^12 - 2c w^6 + c^2 + 1) with i = w^6 - c (c = 9 on BN254, 1 on
# BLS12-381); snarkjs (ffjavascript) writes Fq12 as the tower Fq2[v]/(v^3 - (c + i)), then
# [w]/(w^2 - v): [[a00, a01, a02], [a10, a11, a12]] with a_jk in Fq2 the coefficient of w^(2k+j).


def get_xi_real(curve: Curve) -> int:
    """c in xi = c + i, read from py_ecc's FQ12 modulus (the w^6 coefficient is -2c)."""
    return -curve.FQ12.FQ12_MODULUS_COEFFS[6] // 2


def get_snarkjs_gt_exponent(curve: Curve) -> int:
    """snarkjs's pairing equals py_ecc's raised to this constant (their final exponentiations differ).

    BN254: ffjavascript's hard part computes the 2x(6x^2 + 3x + 1) multiple of the exponent,
    x the BN parameter (py_ecc's ate loop count is 6x + 2). BLS12-381: py_ecc loops over |x| with
    x < 0 (the inverse pairing) and ffjavascript computes the 3 multiple: -3. Both were measured
    against keys snarkjs wrote (tests/test_snarkjs_interop.py checks BN254 on every run).
    """
    if curve.name == "bn128":
        from py_ecc.optimized_bn128.optimized_pairing import ate_loop_count

        x = (ate_loop_count - 2) // 6
        return 2 * x * (6 * x * x + 3 * x + 1) % curve.r
    return -3 % curve.r


def compute_snarkjs_alphabeta(vk: VerifyingKey) -> Any:
    curve = vk.curve
    return curve.pairing(vk.alpha_g1, vk.beta_g2) ** get_snarkjs_gt_exponent(curve)


def format_fq12(value: Any, curve: Curve) -> list[list[list[str]]]:
    a = [int(c) for c in value.coeffs]
    c = get_xi_real(curve)
    return [
        [[str((a[2 * k + j] + c * a[2 * k + j + 6]) % curve.q), str(a[2 * k + j + 6])] for k in range(3)]
        for j in range(2)
    ]


def parse_fq12(value: Any, curve: Curve, where: str) -> Any:
    c = get_xi_real(curve)
    coeffs = [0] * 12
    for j, half in enumerate(require_list(value, 2, where)):
        for k, fq2 in enumerate(require_list(half, 3, f"{where}[{j}]")):
            real, imaginary = parse_fq2(fq2, curve, f"{where}[{j}][{k}]")
            coeffs[2 * k + j] += real - c * imaginary
            coeffs[2 * k + j + 6] += imaginary
    return curve.FQ12(coeffs)


def is_alphabeta_consistent(obj: dict[str, Any]) -> bool:
    """Cross-check a key file's vk_alphabeta_12 against e(alpha, beta) (costs one pairing)."""
    vk = parse_verifying_key(obj)
    if "vk_alphabeta_12" not in obj:
        raise SnarkjsFormatError("verification_key.json: missing field 'vk_alphabeta_12'")
    written = parse_fq12(obj["vk_alphabeta_12"], vk.curve, "verification_key.json: vk_alphabeta_12")
    return written == compute_snarkjs_alphabeta(vk)


# --- proof.json and public.json -----------------------------------------------------------------


def parse_proof(obj: Any) -> Proof:
    file = "proof.json"
    obj = require_object(obj, file, ("pi_a", "pi_b", "pi_c", "protocol", "curve"))
    parse_protocol(obj, file)
    curve = parse_curve(obj, file)
    return Proof(
        a=parse_g1(obj["pi_a"], curve, f"{file}: pi_a"),
        b=parse_g2(obj["pi_b"], curve, f"{file}: pi_b"),
        c=parse_g1(obj["pi_c"], curve, f"{file}: pi_c"),
        curve=curve,
    )


def format_proof(proof: Proof) -> dict[str, Any]:
    curve = proof.curve
    return {
        "pi_a": format_g1(proof.a, curve),
        "pi_b": format_g2(proof.b, curve),
        "pi_c": format_g1(proof.c, curve),
        "protocol": "groth16",
        "curve": curve.name,
    }


def parse_public_inputs(obj: Any) -> list[int]:
    # public.json is a bare array
    if not isinstance(obj, list):
        raise SnarkjsFormatError(f"public.json: expected a JSON array of decimal strings, got {type(obj).__name__}")
    return [parse_decimal(value, f"public.json: [{i}]") for i, value in enumerate(obj)]


def format_public_inputs(public_inputs: list[int]) -> list[str]:
    return [str(value) for value in public_inputs]


# --- files ------------------------------------------------------------------------------------------


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise SnarkjsFormatError(f"{Path(path).name}: not valid JSON: {exc}") from exc


def write_json(path: str | Path, obj: Any) -> None:
    Path(path).write_text(json.dumps(obj, indent=1) + "\n")


def load_verifying_key(path: str | Path) -> VerifyingKey:
    return parse_verifying_key(read_json(path))


def load_proof(path: str | Path) -> Proof:
    return parse_proof(read_json(path))


def load_public_inputs(path: str | Path) -> list[int]:
    return parse_public_inputs(read_json(path))


def write_verifying_key(path: str | Path, vk: VerifyingKey) -> None:
    write_json(path, format_verifying_key(vk))


def write_proof(path: str | Path, proof: Proof) -> None:
    write_json(path, format_proof(proof))


def write_public_inputs(path: str | Path, public_inputs: list[int]) -> None:
    write_json(path, format_public_inputs(public_inputs))


def compute_vk_hash(vk_json: Mapping[str, Any]) -> bytes:
    """keccak256 of a snarkjs verification_key.json in canonical form (sorted keys, no spaces):
    how a key is pinned (the node's keys, a deployment, `rollup verify --vk-hash`)."""
    return keccak256(json.dumps(vk_json, sort_keys=True, separators=(",", ":")).encode())


def compute_public_inputs_hash(public_inputs: Sequence[int]) -> bytes:
    """keccak256 of the public inputs as 32-byte big-endian words (what a proof row records)."""
    return keccak256(b"".join(value.to_bytes(32, "big") for value in public_inputs))
