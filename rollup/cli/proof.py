"""`rollup proof ...`: Groth16 proof files (snarkjs format)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rollup.cli.common import BackendOption, UserError, console, print_json, use_backend
from verifier.groth16 import MalformedInput, prepare_verifying_key, verify_proof
from verifier.snarkjs import load_proof, load_public_inputs, load_verifying_key

app = typer.Typer(help="Groth16 proofs and keys in snarkjs's JSON format.", no_args_is_help=True)


def compute_verdict(vk_path: Path, public_path: Path, proof_path: Path) -> dict[str, Any]:
    """Verify the three files; malformed content is a verdict (with its reason), not a crash."""
    for path in (vk_path, public_path, proof_path):
        # a missing file is the user's mistake, not an invalid proof
        if not path.is_file():
            raise UserError(f"file not found: {path}")
    started = time.perf_counter()
    verdict: dict[str, Any] = {"valid": False, "status": "malformed", "reason": None, "message": ""}
    try:
        vk = load_verifying_key(vk_path)
        public_inputs = load_public_inputs(public_path)
        proof = load_proof(proof_path)
        verdict.update(curve=vk.curve.name, n_public=vk.n_public)
        is_valid = verify_proof(prepare_verifying_key(vk), proof, public_inputs)
    except MalformedInput as exc:
        verdict.update(reason=exc.reason, message=str(exc))
    else:
        verdict.update(
            valid=is_valid,
            status="ok" if is_valid else "invalid",
            reason=None if is_valid else "pairing_check_failed",
            message="proof verifies" if is_valid else "proof does not verify for these public inputs and key",
        )
    verdict["seconds"] = round(time.perf_counter() - started, 3)
    return verdict


@app.command("verify")
def verify(
    vk: Annotated[Path, typer.Argument(help="verification_key.json (snarkjs format)")],
    public: Annotated[Path, typer.Argument(help="public.json: the public inputs as decimal strings")],
    proof: Annotated[Path, typer.Argument(help="proof.json (snarkjs format)")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    backend: BackendOption = None,
) -> None:
    """Verify a Groth16 proof (same argument order as `snarkjs groth16 verify`). Exit 0 iff valid."""
    with use_backend(backend):
        verdict = compute_verdict(vk, public, proof)
    if json_output:
        print_json(verdict)
    elif verdict["valid"]:
        console.print(f"[bold green]OK![/] {verdict['message']} ({verdict['seconds']} s)")
    if not verdict["valid"]:
        label = "INVALID" if verdict["status"] == "invalid" else f"MALFORMED ({verdict['reason']})"
        # main() prints it on stderr and exits 1; with --json, stdout already holds the verdict
        raise UserError(f"{label}: {verdict['message']}", exit_code=1)
