"""Publishing and verifying batches: `rollup publish BATCH DIR` and `rollup verify [BATCH]`."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rollup.cli.common import BackendOption, UserError, console, console_err, print_json, use_backend
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
    from rollup.publish import PublishError, publish_batch

    with open_store(home) as (target, store):
        try:
            published = publish_batch(target, store, batch, directory)
        except PublishError as exc:
            raise UserError(str(exc)) from None
    segments = published.batch.segments
    info = {
        "batch": batch,
        "directory": str(directory),
        "segments": len(segments),
        "transactions": sum(len(s.transactions) + (s.oracle_update is not None) for s in segments),
        "prev_root": published.batch.prev_root,
        "new_root": published.batch.new_root,
        "vk_hash": published.batch.vk_hash,
    }
    if json_output:
        print_json(info)
        return
    console.print(f"batch {batch}: {info['segments']} segments published to {directory} (new root {info['new_root']})")


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
    deployment: Annotated[
        Optional[Path],
        typer.Option("--deployment", help="Pin the key to this L1 deployment's (its deployment JSON's vk_hash).", show_default=False),
    ] = None,
    l1: Annotated[
        bool,
        typer.Option(
            "--l1",
            help="Check the batch's deposits against the L1 deposit queue of this home's deployment (the embedded L1 "
            "in HOME/l1, or --rpc-url), and pin the key to that deployment's. Without it deposits are not "
            "authenticated: they carry no signature.",
        ),
    ] = False,
    rpc_url: Annotated[
        Optional[str], typer.Option("--rpc-url", help="With --l1: a JSON-RPC chain instead of the embedded L1.", show_default=False)
    ] = None,
    trust_published_key: Annotated[
        bool,
        typer.Option(
            "--trust-published-key",
            help="Accept the verifying key in the published directory without a pin (UNSAFE: whoever wrote the "
            "directory chose the key, so the proofs prove nothing).",
        ),
    ] = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a batch from its published data (verifier/transition.py): the previous state opened
    against the previous root, every signature checked (L2 signatures verified, Ethereum ones
    recovered), every public input rebuilt, all proofs
    in one batched check, the new root rebuilt from the published state after. Exit 0 if valid, 1
    with the reason if not.

    The verifying key is pinned, never taken from the data it checks: by --vk-hash, else by
    --deployment's recorded key hash, else by the keys of the node in --home (`rollup setup`).
    Without any of them the command refuses, unless --trust-published-key (a warning is printed)."""
    from verifier.transition import VerificationError, read_transition, verify_transition

    expected_prev_root = parse_word(prev_root, "--prev-root")
    with contextlib.ExitStack() as stack:
        stack.enter_context(use_backend(backend))
        deposit_queue = None
        if l1:
            deposit_queue, l1_vk_hash = stack.enter_context(open_deposit_queue(home, rpc_url))
        if l1 and vk_hash is None and deployment is None:
            expected, pinned_by = parse_word(l1_vk_hash, "the deployment's key hash"), "deployment"
        else:
            expected, pinned_by = get_pinned_vk_hash(vk_hash, deployment, trust_published_key, home)
        if published is None:
            number = batch if batch is not None else get_latest_batch(home)
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rollup-published-")))
            publish_for_verify(home, number, directory)
        else:
            directory = published
        try:
            prev = int.from_bytes(expected_prev_root, "big") if expected_prev_root is not None else None
            report = verify_transition(read_transition(directory), expected, prev, deposit_queue=deposit_queue)
        except VerificationError as exc:
            verdict: dict[str, Any] = {"valid": False, "reason": exc.reason, "message": exc.message, "checks": {}}
        else:
            verdict = {"valid": True, "reason": None, "message": "batch verifies", "checks": report.timings, "report": report.to_dict()}
    verdict["vk_pinned_by"] = pinned_by
    if batch is not None and verdict["valid"] and verdict["report"]["batch"] != batch:
        verdict = {"valid": False, "reason": "wrong_batch", "message": f"the published batch is {verdict['report']['batch']}, not {batch}", "checks": verdict["checks"]}
    if json_output:
        print_json(verdict)
    elif verdict["valid"]:
        report_dict = verdict["report"]
        seconds = sum(verdict["checks"].values())
        console.print(
            f"[bold green]VALID[/] batch {report_dict['batch']}: {report_dict['n_segments']} segment proofs, "
            f"{report_dict['n_transactions']} transactions, new root {report_dict['new_root']} ({seconds:.2f} s)"
        )
    if not verdict["valid"]:
        raise UserError(f"INVALID ({verdict['reason']}): {verdict['message']}", exit_code=1)


UNPINNED_WARNING = (
    "WARNING: the verifying key is not pinned (--trust-published-key): it is the one in the published directory, "
    "so whoever wrote the directory chose it and the proofs prove nothing about the batch"
)


def get_pinned_vk_hash(vk_hash: str | None, deployment: Path | None, trust_published_key: bool, home: Path | None) -> tuple[bytes | None, str]:
    """(the key hash to pin, where it comes from): --vk-hash, the deployment's, the node's keys;
    (None, "unpinned") only with --trust-published-key, after a warning; else UserError."""
    if vk_hash is not None:
        return parse_word(vk_hash, "--vk-hash"), "--vk-hash"
    if deployment is not None:
        return parse_word(read_deployment_vk_hash(deployment), f"{deployment}'s vk_hash"), "deployment"
    node_key = get_node_vk_hash(home)
    if node_key is not None:
        return parse_word(node_key, "the node's key hash"), "node keys"
    # a key nobody pinned is the prover's choice: only by explicit request
    if not trust_published_key:
        raise UserError(
            "the verifying key is not pinned: give --vk-hash, --deployment FILE, or a --home whose node ran "
            "`rollup setup`; --trust-published-key accepts the published key (UNSAFE)"
        )
    console_err.print(UNPINNED_WARNING)
    return None, "unpinned"


@contextlib.contextmanager
def open_deposit_queue(home: Path | None, rpc_url: str | None) -> Any:
    """(the L1 deposit queue's rolling hash after n deposits, the deployment's key hash) of this
    home's deployment."""
    from rollup.cli.l1 import open_rollup

    with open_rollup(home, rpc_url) as (_, contracts, _, _, deployment):
        rollup = contracts.rollup
        yield (lambda n: bytes(rollup.functions.deposit_hashes(n).call())), deployment.vk_hash


def read_deployment_vk_hash(path: Path) -> str:
    from contracts.deployment import Deployment

    try:
        return Deployment.load(path).vk_hash
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (ValueError, TypeError) as exc:  # not JSON, or not a deployment's fields
        raise UserError(f"{path} is not a deployment file: {exc}") from None


def get_node_vk_hash(home: Path | None) -> str | None:
    """The key hash of the node in `home` (its `rollup setup`), or None if there is no node or no key."""
    from prover.pipeline import ProvingError, get_current_keys
    from rollup.node import resolve_home
    from rollup.storage import StorageError, Store

    target = resolve_home(home)
    try:
        store = Store.open(target)
    except StorageError:
        return None
    try:
        return get_current_keys(target, store)[0]
    except ProvingError:
        return None
    finally:
        store.close()


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
    from rollup.publish import PublishError, publish_batch

    with open_store(home) as (target, store):
        try:
            publish_batch(target, store, batch, directory)
        except PublishError as exc:
            raise UserError(str(exc)) from None
