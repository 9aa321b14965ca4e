"""`rollup demo`: the whole pipeline on the embedded defaults, in a fresh node directory."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from dataclasses import asdict
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from rollup.cli.common import UserError, console, print_json
from rollup.cli.fixtures import generate_with_progress
from rollup.cli.node import HomeOption, JsonOption, _submit_with_progress, batch_summary, hex0x
from rollup.executors import make_executor
from rollup.modes import ExecutionOptions
from rollup.fixtures import FixtureError, WorkloadSpec, generate_workload, write_workload
from rollup.node import Node, NodeError, resolve_home
from rollup.state import get_equity, get_margin_requirement
from rollup.units import format_usd


def demo(
    home: HomeOption = None,
    accounts: Annotated[int, typer.Option(help="Accounts in the generated workload.")] = 1_000,
    txs: Annotated[int, typer.Option(help="Mixed transactions after the setup deposits.")] = 5_000,
    contention: Annotated[float, typer.Option(help="Share of transactions on one hot account and market.")] = 0.1,
    invalid_share: Annotated[float, typer.Option(help="Share of deliberately invalid transactions.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 7,
    workers: Annotated[int, typer.Option(help="Worker processes for the batch (0: sequential only).")] = 2,
    prove: Annotated[bool, typer.Option("--prove/--no-prove", help="Also prove, verify and settle a small rollup (circuit v3, Groth16, the embedded L1).")] = True,
    proof_txs: Annotated[int, typer.Option("--proof-txs", help="Mixed transactions of the proven rollup, after its deposits.")] = 64,
    proof_slots: Annotated[int, typer.Option("--proof-slots", help="Slots per proven segment (the circuit's size: about 50k constraints a slot).")] = 8,
    json_output: JsonOption = False,
) -> None:
    """Create a node in HOME/demo (replacing an earlier demo), generate a signed workload, execute
    it as one batch on worker processes, check it against a sequential run of the same batch,
    reopen the node to check the committed root, and print a summary."""
    # a worker count is a count
    if workers < 0:
        raise UserError(f"--workers must be >= 0, got {workers}")
    # a segment holds at least one transaction
    if proof_slots < 1:
        raise UserError(f"--proof-slots must be >= 1, got {proof_slots}")
    folder = resolve_home(home) / "demo"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        spec = WorkloadSpec(accounts=accounts, txs=txs, contention=contention, invalid_share=invalid_share, seed=seed)
        workload = generate_with_progress(spec, None, show=not json_output)
    except FixtureError as exc:
        raise UserError(str(exc)) from None
    timings["fixtures_s"] = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_workload(workload, folder / "workload.jsonl", folder / "genesis.json")
    t1 = time.perf_counter()
    try:
        with make_executor("process", workers=workers or 1) as executor:
            # execution only: this node shows one large batch in parallel and never settles
            node = Node.init(folder / "node", workload.genesis, max_batch_txs=None)
            timings["init_s"] = time.perf_counter() - t1
            options = ExecutionOptions(mode="partitioned", executor=executor) if workers else ExecutionOptions()
            result = _submit_with_progress(node, workload.transactions, options, quiet=json_output).batch
        timings["submit_s"] = result.timings["total_s"]
        node.close()
        t_seq = time.perf_counter()
        reference = Node.init(folder / "sequential", workload.genesis, max_batch_txs=None)  # the same batch, one process
        sequential_root = reference.submit(workload.transactions).batch.new_root
        reference.close()
        timings["sequential_reference_s"] = time.perf_counter() - t_seq
        t2 = time.perf_counter()
        node = Node.open(folder / "node")  # recomputes the root from the stored leaves
        timings["reopen_and_check_s"] = time.perf_counter() - t2
    except NodeError as exc:
        raise UserError(str(exc)) from None
    try:
        if node.root != result.new_root:
            raise UserError(f"reopened root {hex0x(node.root)} differs from the committed {hex0x(result.new_root)}")
        parallel_equals_sequential = sequential_root == result.new_root
        if not parallel_equals_sequential:
            raise UserError(f"the parallel root {hex0x(result.new_root)} differs from the sequential {hex0x(sequential_root)}")
        hot = 0
        sample = {
            "account": hot,
            "equity": get_equity(node.state, hot),
            "initial_margin": get_margin_requirement(node.state, hot),
            "positions": len(node.state.accounts[hot].positions),
        }
    finally:
        node.close()
    proof = run_proof_demo(folder, resolve_home(home) / "demo-keys", seed, workers, json_output, proof_txs, proof_slots) if prove else None
    summary = batch_summary(result)
    out = {
        "folder": str(folder),
        "workload": {k: workload.summary[k] for k in ("transactions", "accounts", "instruments", "by_type")},
        **summary,
        "workers": workers,
        "parallel_equals_sequential": parallel_equals_sequential,
        "phase_timings_s": {k: round(v, 3) for k, v in timings.items()},
        "hot_account": sample,
        "proof": proof,
    }
    if json_output:
        print_json(out)
        return
    console.print(f"[bold]demo[/] in {folder}")
    table = Table(show_header=False)
    table.add_row("workload", f"{out['workload']['transactions']} signed transactions, {accounts} accounts, "
                  f"{out['workload']['instruments']} instruments")
    table.add_row("batch", f"{summary['accepted']} accepted, {summary['rejected']} rejected, "
                  f"{summary['touched_leaves']} leaves changed")
    for phase, seconds in out["phase_timings_s"].items():
        table.add_row(phase, f"{seconds:.3f}")
    for phase, seconds in summary["timings_s"].items():
        table.add_row(f"  submit: {phase}", f"{seconds:.3f}")
    table.add_row("hot account 0", f"equity {format_usd(sample['equity'])}, initial margin "
                  f"{format_usd(sample['initial_margin'])}, {sample['positions']} positions")
    console.print(table)
    console.print(f"prev root {summary['prev_root']}")
    console.print(f"new root  [bold]{summary['new_root']}[/] (recomputed from the stored leaves after reopening)")
    if workers:
        console.print(f"{workers} worker processes gave the same root as a sequential run of the same batch")
    if proof is not None:
        t = proof["timings_s"]
        console.print(
            f"proven rollup (circuit v3): {proof['transactions']} transactions in {proof['batches']} batch(es), {proof['segments']} segments "
            f"of {proof['slots']} slots; setup {'cached' if proof['setup_cached'] else 'created'} ({t['setup_s']:.1f} s), "
            f"proving {t['prove_s']:.1f} s, verification [bold]{'VALID' if proof['valid'] else 'INVALID'}[/] ({t['verify_s']:.2f} s: "
            "signatures, public inputs rebuilt, one batched pairing check, the new root rebuilt from the published state)"
        )
        settled = proof["settlement"]
        console.print(
            f"settled on the embedded L1 (py-evm): batches {settled['batches']}, {settled['gas_used']:,} gas "
            f"({settled['gas_per_transaction']:,} per transaction), L1 root {settled['new_root']} "
            f"({t['l1_s']:.1f} s with deployment and deposits)"
        )
    console.print(f"next: rollup status --home {folder / 'node'}")


PROOF_DEMO_ACCOUNTS = 8
PROOF_DEMO_TREE_DEPTH = 2  # 16 accounts: a 4-ary tree of depth 2 (paths are most of a slot's constraints)
PROOF_DEMO_MAX_BATCH = 128


def run_proof_demo(folder: Path, key_cache: Path, seed: int, workers: int, quiet: bool, n_txs: int, slots: int) -> dict:
    """A small rollup (8 accounts, a perpetual and an option series) through the whole circuit-v3
    pipeline: its deposits and `n_txs` mixed transactions executed, the setup (keys cached in
    `key_cache` across demo runs), every segment proven on `workers` processes, each batch
    published and verified from the published files alone (pinned key, signatures, public inputs,
    one batched pairing check, the new root rebuilt), then settled on the embedded L1."""
    from prover.pipeline import prove_batches, run_setup
    from rollup.publish import publish_batch
    from rollup.storage import Store
    from verifier.transition import VerificationError, read_transition, verify_transition

    timings: dict[str, float] = {}
    spec = WorkloadSpec(accounts=PROOF_DEMO_ACCOUNTS, perps=1, series=1, txs=n_txs, seed=seed, tree_depth=PROOF_DEMO_TREE_DEPTH)
    small = generate_workload(spec, workers=1)
    home = folder / "proven"
    node = Node.init(home, small.genesis, max_batch_txs=PROOF_DEMO_MAX_BATCH)
    submission = node.submit(small.transactions)
    node.close()
    batches = [b.number for b in submission.batches]
    accepted = sum(b.n_accepted for b in submission.batches)
    store = Store.open(home)
    try:
        t0 = time.perf_counter()
        cached = restore_keys(key_cache, home, slots)
        setup = run_setup(home, store, slots)
        if not setup.cached:
            save_keys(key_cache, home)
        timings["setup_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        with make_executor("process", workers=workers or 1) as executor:
            report = prove_batches(home, store, executor)
        timings["prove_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        valid, reason, segments = True, None, 0
        for number in batches:
            directory = folder / "published" / f"batch-{number}"
            publish_batch(home, store, number, directory)
            try:
                segments += verify_transition(read_transition(directory), bytes.fromhex(setup.vk_hash[2:])).n_segments
            except VerificationError as exc:
                valid, reason = False, f"batch {number}: {exc.reason}: {exc.message}"
                break
        timings["verify_s"] = time.perf_counter() - t2
    finally:
        store.close()
    if not valid:
        raise UserError(f"the demo's proven batch does not verify: {reason}")
    t3 = time.perf_counter()
    settlement = run_settlement_demo(home, small, seed)
    timings["l1_s"] = time.perf_counter() - t3
    return {
        "settlement": settlement,
        "transactions": accepted,
        "batches": len(batches),
        "segments": segments,
        "slots": slots,
        "setup_cached": cached and setup.cached,
        "vk_hash": setup.vk_hash,
        "valid": valid,
        "proving_cpu_s": round(report.prove_seconds, 3),
        "published": str(folder / "published"),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def run_settlement_demo(home: Path, small: Any, seed: int) -> dict:
    """Settle the proven batches on the embedded L1 (kept in HOME/l1): deploy the contracts for the
    node, make the L1 deposits its Deposit transactions consume (from the same test keys: the
    contract assigns account ids in order), settle every batch (RollupV3 checks the root chain,
    every signature, the deposit queue and all segment proofs in one pairing check)."""
    from contracts.chain import L1
    from contracts.deployment import GAS_MONEY, UNIT_WEI, open_contracts
    from contracts.transition_client import deposit, settle
    from rollup.cli.l1 import deploy_for_node, l1_errors
    from rollup.publish import build_published, get_genesis
    from rollup.signing import dev_account_key, get_address
    from rollup.storage import Store
    from verifier.wire import Deposit

    keys = {get_address(key): key for key in (dev_account_key(seed, i) for i in range(PROOF_DEMO_ACCOUNTS))}
    l1 = L1.open(home / "l1" / "chain")
    store = Store.open(home)
    try:
        with l1_errors():
            deployment = deploy_for_node(l1, home, store)
            contracts = open_contracts(l1, deployment, get_genesis(store))
            opened: set[int] = set()
            for tx in small.transactions:
                if isinstance(tx, Deposit):
                    l1.fund(tx.address, tx.amount * UNIT_WEI + GAS_MONEY)
                    # a first deposit opens the account (the contract assigns ids in order)
                    queued = deposit(l1, contracts, tx.account if tx.account in opened else None, tx.amount, keys[tx.address])
                    opened.add(queued.account)
                    # the L1 queue entry is the L2 deposit the batch consumes
                    if queued != tx:
                        raise UserError(f"L1 deposit {queued.deposit_id} does not match the L2 deposit {tx.deposit_id}")
            results = []
            latest = store.latest_batch()
            for number in range(1, (latest.number if latest else 0) + 1):
                published = build_published(home, store, number)
                results.append(settle(l1, contracts, published.batch, published.proofs))
    finally:
        store.close()
        l1.save()
    gas = sum(r.gas_used for r in results)
    n_tx = sum(r.transactions for r in results)
    return {
        "rollup": deployment.rollup,
        "batches": [r.batch for r in results],
        "gas_used": gas,
        "transactions": n_tx,
        "gas_per_transaction": round(gas / max(n_tx, 1)),
        "calldata_bytes": sum(r.calldata_bytes for r in results),
        "new_root": "0x" + contracts.rollup.functions.state_root().call().to_bytes(32, "big").hex(),
    }


def _key_files(home: Path) -> tuple[Path, Path]:
    from prover.pipeline import get_key_paths

    return get_key_paths(home)


def save_keys(cache: Path, home: Path) -> None:
    """Keep the demo circuit's keys and their node settings for the next demo run."""
    from prover.pipeline import META_CIRCUIT_VERSION, META_SETUP_CONSTRAINTS, META_SETUP_SLOTS, META_VK_HASH
    from rollup.storage import Store

    cache.mkdir(parents=True, exist_ok=True)
    for path in _key_files(home):
        shutil.copyfile(path, cache / path.name)
    store = Store.open(home)
    try:
        settings = {k: store.get_meta(k) for k in (META_VK_HASH, META_SETUP_SLOTS, META_SETUP_CONSTRAINTS, META_CIRCUIT_VERSION)}
        settings["genesis"] = store.get_meta("genesis")
    finally:
        store.close()
    (cache / "settings.json").write_text(json.dumps(settings))


def restore_keys(cache: Path, home: Path, slots: int) -> bool:
    """Put cached keys in place if they were made for this genesis and segment size; `rollup
    prove` verifies every proof before storing it, so a wrong key fails loudly, never silently."""
    from prover.circuits import CIRCUIT_VERSION
    from prover.pipeline import META_CIRCUIT_VERSION, META_SEGMENT_SLOTS, META_SETUP_SLOTS
    from rollup.storage import Store, set_meta

    settings_path = cache / "settings.json"
    if not settings_path.exists() or not all((cache / p.name).exists() for p in _key_files(home)):
        return False
    settings = json.loads(settings_path.read_text())
    store = Store.open(home)
    try:
        if settings.pop("genesis") != store.get_meta("genesis") or settings[META_SETUP_SLOTS] != str(slots):
            return False
        # keys of this circuit version only
        if settings.get(META_CIRCUIT_VERSION) != CIRCUIT_VERSION:
            return False
        for path in _key_files(home):
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache / path.name, path)
        for key, value in settings.items():
            set_meta(store, key, value)
        set_meta(store, META_SEGMENT_SLOTS, str(slots))
    finally:
        store.close()
    return True
