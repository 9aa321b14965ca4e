"""Crash safety: a real `rollup submit` process killed with SIGKILL mid-batch.

After a kill at any point the node reopens at the last committed batch, its stored root equals
the root recomputed from the stored leaves (Node.open checks this), and resubmitting the same file
gives exactly the root an uninterrupted run gives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node

ROLLUP = [sys.executable, "-m", "rollup.cli.main"]


@pytest.fixture(scope="module")
def workload_files(tmp_path_factory):
    workload = generate_workload(WorkloadSpec(accounts=300, txs=3000, seed=11, invalid_share=0.02), workers=1)
    folder = tmp_path_factory.mktemp("crash")
    txs = folder / "workload.jsonl"
    txs.write_text("".join(tx.model_dump_json() + "\n" for tx in workload.transactions))
    genesis = folder / "genesis.json"
    genesis.write_text(workload.genesis.model_dump_json())
    reference = Node.init(folder / "reference", workload.genesis)
    expected_root = reference.submit(workload.transactions, max_batch_txs=None).batch.new_root
    reference.close()
    return txs, genesis, expected_root


def _init(home: Path, genesis: Path) -> None:
    # one large batch (no settlement bound): its commit is what gets killed
    subprocess.run([*ROLLUP, "init", "--home", str(home), "--genesis", str(genesis), "--max-batch-txs", "0"], check=True, capture_output=True)


def _submit(home: Path, txs: Path, crash_at: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("ROLLUP_CRASH_AT", None)
    if crash_at:
        env["ROLLUP_CRASH_AT"] = crash_at
    return subprocess.Popen([*ROLLUP, "submit", str(txs), "--home", str(home), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _check_recovers(home: Path, txs: Path, expected_root: bytes) -> int:
    """Reopen (root check inside), then finish the work if the batch was lost; return the batch
    number seen after the crash."""
    node = Node.open(home)
    seen = node.batch_number
    node.close()
    assert seen in (0, 1)
    if seen == 0:
        proc = _submit(home, txs)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    node = Node.open(home)
    try:
        assert node.batch_number == 1
        assert node.root == expected_root
    finally:
        node.close()
    return seen


@pytest.mark.parametrize("point, committed", [("mid_write", 0), ("before_commit", 0), ("after_commit", 1)])
def test_kill_at_each_point_of_the_commit(workload_files, tmp_path, point, committed):
    txs, genesis, expected_root = workload_files
    home = tmp_path / "node"
    _init(home, genesis)
    proc = _submit(home, txs, crash_at=point)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert _check_recovers(home, txs, expected_root) == committed


def test_kill_at_random_moments(workload_files, tmp_path):
    """SIGKILL from outside at moments spread over a whole run (import, execution, commit)."""
    txs, genesis, expected_root = workload_files
    timing_home = tmp_path / "timing"
    _init(timing_home, genesis)
    start = time.perf_counter()
    assert _submit(timing_home, txs).wait(timeout=120) == 0
    duration = time.perf_counter() - start
    for i, fraction in enumerate((0.3, 0.6, 0.8, 0.9, 0.97)):
        home = tmp_path / f"node{i}"
        _init(home, genesis)
        proc = _submit(home, txs)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        _check_recovers(home, txs, expected_root)
