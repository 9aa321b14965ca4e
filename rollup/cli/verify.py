"""Publishing and verifying batches: `rollup publish BATCH DIR` and `rollup verify [BATCH]`."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rollup.cli.common import BackendOption, UserError, console, print_json, use_backend
from rollup.cli.node import HomeOption, JsonOption
from rollup.cli.prove import open_store


def publish_command(
    batch: Annotated[int, typer.Argument(help="Batch number (committed and proven).")],
    directory: Annotated[Path, typer.Argument(help="Directory to write (created if missing).")],
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write a proven batch's published data: batch.json, verification_key.json, and per segment
    proofs/segment-<i>.json and proofs/public-<i>.json (snarkjs format). `rollup verify
    --published DIR` checks it without the node."""
    from prover.segments import SegmentReplayError
    from rollup.publish import PublishError, publish_batch

    with open_store(home) as (target, store):
        try:
            published = publish_batch(target, store, batch, directory)
        except (PublishError, SegmentReplayError) as exc:
            raise UserError(str(exc)) from None
    info = {
        "batch": batch,
        "directory": str(directory),
        "segments": len(published.batch.segments),
        "transactions": len(published.batch.transactions),
        "commitment": published.batch.commitment,
        "vk_hash": published.batch.vk_hash,
    }
    if json_output:
        print_json(info)
        return
    console.print(f"batch {batch}: {info['segments']} segments published to {directory} (commitment {info['commitment']})")


def get_latest_batch(home: Path | None) -> int:
    with open_store(home) as (_, store):
        latest = store.latest_batch()
    # something to verify
    if latest is None:
        raise UserError("the node has no committed batch yet")
    return latest.number


def verify_command(
    batch: Annotated[Optional[int], typer.Argument(help="Batch number (default: the latest).", show_default=False)] = None,
    published: Annotated[
        Optional[Path],
        typer.Option("--published", help="Verify this published directory alone (no node needed).", show_default=False),
    ] = None,
    vk_hash: Annotated[
        Optional[str], typer.Option("--vk-hash", help="Accept only proofs for the key with this hash (0x hex).", show_default=False)
    ] = None,
    prev_root: Annotated[
        Optional[str],
        typer.Option("--prev-root", help="Accept only a batch that starts from this state root (0x hex).", show_default=False),
    ] = None,
    backend: BackendOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a batch from its published data: signatures and nonces, every public input rebuilt,
    all proofs in one batch check, the before leaves against the previous root, chaining, the new
    root and the commitment. Exit 0 if valid, 1 with the reason if not."""
    from verifier.batch import VerificationError, verify_published_dir

    expected = parse_word(vk_hash, "--vk-hash")
    expected_prev_root = parse_word(prev_root, "--prev-root")
    with contextlib.ExitStack() as stack:
        stack.enter_context(use_backend(backend))
        if published is None:
            number = batch if batch is not None else get_latest_batch(home)
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rollup-published-")))
            publish_for_verify(home, number, directory)
        else:
            directory = published
        try:
            report = verify_published_dir(directory, expected, expected_prev_root=expected_prev_root)
        except VerificationError as exc:
            verdict: dict[str, Any] = {"valid": False, "reason": exc.reason, "message": exc.message, "checks": exc.timings}
        else:
            verdict = {"valid": True, "reason": None, "message": "batch verifies", "checks": report.timings, "report": report.to_dict()}
    if batch is not None and verdict["valid"] and verdict["report"]["batch"] != batch:
        verdict = {"valid": False, "reason": "wrong_batch", "message": f"the published batch is {verdict['report']['batch']}, not {batch}", "checks": verdict["checks"]}
    if json_output:
        print_json(verdict)
    elif verdict["valid"]:
        report_dict = verdict["report"]
        seconds = sum(verdict["checks"].values())
        console.print(
            f"[bold green]VALID[/] batch {report_dict['batch']}: {report_dict['n_segments']} segment proofs, "
            f"{report_dict['n_accepted']}/{report_dict['n_transactions']} transactions, new root {report_dict['new_root']} ({seconds:.2f} s)"
        )
    if not verdict["valid"]:
        raise UserError(f"INVALID ({verdict['reason']}): {verdict['message']}", exit_code=1)


def parse_word(text: str | None, option: str) -> bytes | None:
    if text is None:
        return None
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    # a keccak hash or a root: one 32-byte word
    if len(raw) != 32:
        raise UserError(f"{option} must be 32 bytes of 0x hex, got {text!r}")
    return raw


def publish_for_verify(home: Path | None, batch: int, directory: Path) -> None:
    from prover.segments import SegmentReplayError
    from rollup.publish import PublishError, publish_batch

    with open_store(home) as (target, store):
        try:
            publish_batch(target, store, batch, directory)
        except (PublishError, SegmentReplayError) as exc:
            raise UserError(str(exc)) from None
