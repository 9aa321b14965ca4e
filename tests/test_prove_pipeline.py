"""`rollup setup` and `rollup prove` end to end: real keys, real proofs, real SQLite, real processes.

One node home is set up once per session (a 1-slot segment circuit: the setup costs several
seconds) with a committed batch of four transactions (two deposits, an oracle update, a
withdrawal); every test proves in its own copy of that home.
"""

from __future__ import annotations

import json
import random
import shutil
from concurrent.futures import Executor, Future

import pytest
from typer.testing import CliRunner

from prover.pipeline import ProvingError, get_key_paths, prove_batches
from rollup.cli.main import app
from rollup.executors import SerialExecutor
from prover.pipeline import CIRCUIT_VERSION
from rollup.publish import build_published
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.storage import Store, get_leaves_before, get_proofs, set_meta
from verifier.snarkjs import compute_public_inputs_hash, compute_vk_hash
from verifier.groth16 import batch_verify, prepare_verifying_key
from verifier.transition import PublishedTransition, compute_transition_inputs, to_field_hex
from verifier.snarkjs import load_verifying_key, parse_proof, read_json
from verifier.wire import Genesis

runner = CliRunner()
SEGMENTS = 3  # of the proving node's batch 1 (see test_prove_end_to_end_in_parallel_workers)


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(scope="session")
def proving_home(tmp_path_factory):
    """A node with one committed batch and 1-slot segment keys (made once)."""
    root = tmp_path_factory.mktemp("proving")
    # a withdrawal (Ethereum-signed, no L2 key to register): three 1-slot segments, the pipeline's subject
    workload = generate_workload(WorkloadSpec(accounts=2, perps=1, series=1, txs=1, seed=3, tree_depth=2, mix={"withdraw": 1}), workers=1)
    (root / "genesis.json").write_text(workload.genesis.model_dump_json())
    (root / "txs.jsonl").write_text("".join(tx.model_dump_json() + "\n" for tx in workload.transactions))
    home = root / "home"
    run("init", "--home", str(home), "--genesis", str(root / "genesis.json"), "--json")
    out = json.loads(run("submit", str(root / "txs.jsonl"), "--home", str(home), "--executor", "serial", "--json"))
    assert out["accepted"] == len(workload.transactions) == 4
    setup = json.loads(run("setup", "--slots", "1", "--home", str(home), "--json"))
    assert setup["cached"] is False and setup["n_slots"] == 1
    return home, setup


@pytest.fixture
def home(proving_home, tmp_path):
    """A private copy of the session's node, keys included."""
    target = tmp_path / "home"
    shutil.copytree(proving_home[0], target)
    return target


def get_published_items(home, batch: int = 1, tamper: bool = False) -> tuple[object, list]:
    """(prepared vk, [(proof, public inputs)]) with public inputs recomputed from published data
    only (`verifier.transition.compute_transition_inputs`: the transactions, signatures, oracle
    sections and roots `rollup publish` writes). `tamper` changes the last segment's root after."""
    store = Store.open(home)
    try:
        files = build_published(home, store, batch)
        proofs = get_proofs(store, batch)
    finally:
        store.close()
    data = files.batch.model_dump()
    if tamper:
        last = data["segments"][-1]
        last["root_after"] = to_field_hex(int(last["root_after"], 16) ^ 1)
    published = PublishedTransition.model_validate(data)
    inputs = compute_transition_inputs(published, int(published.prev_root, 16))
    items = []
    for row, x, proof in zip(proofs, inputs, files.proofs, strict=True):
        if not tamper:
            assert row.public_hash == "0x" + compute_public_inputs_hash(x).hex()
            assert row.segment_root == to_field_hex(x[3])
        items.append((parse_proof(proof), x))
    vk = prepare_verifying_key(load_verifying_key(get_key_paths(home)[1]))
    return vk, items


def test_setup_is_cached_and_records_the_key_hash(home, proving_home):
    again = json.loads(run("setup", "--home", str(home), "--json"))
    assert again["cached"] is True and again["vk_hash"] == proving_home[1]["vk_hash"]
    vk_file = get_key_paths(home)[1]
    assert again["vk_hash"] == "0x" + compute_vk_hash(read_json(vk_file)).hex()
    store = Store.open(home)
    try:
        assert store.get_meta("vk_hash") == again["vk_hash"]
    finally:
        store.close()
    # keys serve one segment size
    assert "--force" in run("setup", "--slots", "2", "--home", str(home), code=1)
    assert "verifying key hash" in run("setup", "--home", str(home))
    # and one version of the circuit: keys made before a circuit change are refused, not reused
    store = Store.open(home)
    try:
        assert store.get_meta("circuit_version") == CIRCUIT_VERSION
        set_meta(store, "circuit_version", "1")
    finally:
        store.close()
    out = run("setup", "--home", str(home), code=1)
    assert "version 1 of the segment circuit" in out and "--force" in out
    # nor used by prove, publish or deploy (circuit v2's keys prove another statement)
    for command in (("prove",), ("publish", "1", str(home / "pub")), ("l1", "deploy")):
        assert "version 1 of the segment circuit" in run(*command, "--home", str(home), code=1), command
    store = Store.open(home)
    try:
        set_meta(store, "circuit_version", CIRCUIT_VERSION)  # the keys are this version's: later tests use them
    finally:
        store.close()


def test_setup_backend_option(home):
    """`rollup setup --backend NAME` runs the setup's fixed-base products there; a bad name is one line."""
    out = run("setup", "--force", "--backend", "gpu", "--home", str(home), code=1)
    assert "unknown backend 'gpu'; choose one of: py_ecc, mcl" in out
    from verifier.backends import list_installed

    fresh = json.loads(run("setup", "--force", "--backend", list_installed()[0], "--home", str(home), "--json"))
    assert fresh["cached"] is False and fresh["n_slots"] == 1
    assert fresh["vk_hash"] == "0x" + compute_vk_hash(read_json(get_key_paths(home)[1])).hex()


def test_prove_end_to_end_in_parallel_workers(home):
    out = json.loads(run("prove", "--home", str(home), "--workers", "2", "--json"))
    # three segments: a deposit each, then the oracle update (its section) with the withdrawal
    assert out["proven"] == SEGMENTS and out["batches"]["1"]["segments"] == SEGMENTS and out["batches"]["1"]["proven"] == SEGMENTS
    assert out["executor"] == {"kind": "process", "workers": 2, "cluster": None}
    vk, items = get_published_items(home)
    assert batch_verify(vk, items, random.Random(1))
    # a changed root gives other public inputs: the proofs no longer hold
    vk, tampered = get_published_items(home, tamper=True)
    assert not batch_verify(vk, tampered, random.Random(1))
    # proofs bind their segment: swapping two proofs fails
    swapped = [(items[1][0], items[0][1]), (items[0][0], items[1][1])] + items[2:]
    assert not batch_verify(vk, swapped, random.Random(1))
    # nothing left to prove
    again = json.loads(run("prove", "--home", str(home), "--executor", "serial", "--json"))
    assert again["proven"] == 0 and again["batches"] == {}
    assert "every batch is proven" in run("prove", "--home", str(home), "--executor", "serial")


class FailingAfter(Executor):
    """Runs tasks inline, and fails every task after the first `k` (a crash mid-run)."""

    workers = 1

    def __init__(self, k: int):
        self.k = k
        self.submitted = 0
        self.inner = SerialExecutor()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.submitted += 1
        if self.submitted > self.k:
            future: Future = Future()
            future.set_exception(RuntimeError("worker lost"))
            return future
        return self.inner.submit(fn, *args, **kwargs)


def test_prove_resumes_at_the_first_unproven_segment(home):
    store = Store.open(home)
    try:
        with pytest.raises(ProvingError, match="run prove again to resume"):
            prove_batches(home, store, FailingAfter(2))
        assert [p.segment for p in get_proofs(store, 1)] == [0, 1]
        first = {p.segment: p.proof for p in get_proofs(store, 1)}
    finally:
        store.close()
    out = json.loads(run("prove", "1", "--home", str(home), "--executor", "serial", "--json"))
    assert out["proven"] == SEGMENTS - 2 and out["already_proven"] == 2 and out["batches"]["1"]["proven"] == SEGMENTS
    store = Store.open(home)
    try:
        rows = get_proofs(store, 1)
    finally:
        store.close()
    assert [p.segment for p in rows] == list(range(SEGMENTS))
    assert {p.segment: p.proof for p in rows if p.segment < 2} == first  # kept, not redone
    vk, items = get_published_items(home)
    assert batch_verify(vk, items, random.Random(2))


def test_prove_errors_are_readable(home, tmp_path):
    assert "no committed batch 7" in run("prove", "7", "--home", str(home), "--executor", "serial", code=1)
    shutil.rmtree(home / "keys")
    assert "rollup setup" in run("prove", "--home", str(home), "--executor", "serial", code=1)
    assert "rollup init" in run("prove", "--home", str(tmp_path / "nowhere"), "--executor", "serial", code=1)


def test_prove_killed_mid_run_resumes_with_the_stored_proofs(home):
    """A real `rollup prove` process killed with SIGKILL after its first stored proof: the proofs
    it committed survive, and the next run proves only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # the reference backend: a native one can prove all three segments between two polls
    proc = subprocess.Popen(
        [sys.executable, "-m", "rollup.cli.main", "prove", "--home", str(home), "--executor", "serial", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "ROLLUP_BACKEND": "py_ecc"},
    )
    deadline = time.monotonic() + 600  # a py_ecc proof of a v3 segment is ~10 s of CPU; a loaded machine triples it
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        store = Store.open(home)
        try:
            stored = len(get_proofs(store, 1))
        finally:
            store.close()
        if stored >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "prove finished before it could be killed"
    assert stored >= 1, "no proof was stored within the deadline"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    store = Store.open(home)
    try:
        survived = len(get_proofs(store, 1))
    finally:
        store.close()
    assert 1 <= survived < SEGMENTS
    out = json.loads(run("prove", "--home", str(home), "--executor", "serial", "--json"))
    assert out["proven"] == SEGMENTS - survived and out["already_proven"] == survived
    vk, items = get_published_items(home)
    assert batch_verify(vk, items)
