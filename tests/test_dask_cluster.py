"""`rollup prove --executor dask --cluster tcp://...` on a cluster started as a user starts one:
a `dask scheduler` process and two `dask worker` processes (no nanny) on loopback.

One worker is SIGKILLed while the batch is being proven (after the first proof is stored): the
scheduler re-runs its segments on the other, the command succeeds, and the stored proofs are the
batch's (same segments, same public inputs, same roots as a serial run) and verify. The
proving key reaches each worker once: it is broadcast as bytes (`share_proving_key`) and parsed
once per worker process whatever the number of segments it proves.

The workers run the reference backend so that proving lasts long enough to kill one mid-run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollup.storage import Store, get_proofs
from test_prove_pipeline import get_published_items, proving_home, run  # noqa: F401 - proving_home is a fixture
from verifier.groth16 import batch_verify

DASK = Path(sys.executable).parent / "dask"
pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, {worker name: process}) of real processes on 127.0.0.1, stopped after."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "ROLLUP_BACKEND": "py_ecc", "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "3"}
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        with open(logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        procs.append(proc)
        return proc

    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)], "scheduler")
        wait_for(scheduler_file.exists, 60, "the scheduler file")
        wait_for(lambda: json.loads(scheduler_file.read_text() or "{}").get("address"), 10, "the scheduler address")
        address = json.loads(scheduler_file.read_text())["address"]
        workers = {
            name: start(["worker", address, "--nthreads", "1", "--no-nanny", "--name", name, "--no-dashboard"], name)
            for name in ("w1", "w2")
        }
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def count_stored(home: Path) -> int:
    store = Store.open(home)
    try:
        return len(get_proofs(store, 1))
    finally:
        store.close()


def test_prove_on_a_real_cluster_survives_a_killed_worker(proving_home, tmp_path, cluster):  # noqa: F811
    address, workers = cluster
    home = tmp_path / "home"
    shutil.copytree(proving_home[0], home)
    reference = tmp_path / "reference"
    shutil.copytree(proving_home[0], reference)
    serial = json.loads(run("prove", "--home", str(reference), "--executor", "serial", "--json"))

    proc = subprocess.Popen(
        [sys.executable, "-m", "rollup.cli.main", "prove", "--home", str(home), "--executor", "dask", "--cluster", address, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(lambda: count_stored(home) >= 1 or proc.poll() is not None, 180, "the first stored proof")
    assert proc.poll() is None, f"proving ended before a worker could be killed: {proc.communicate()}"
    os.kill(workers["w1"].pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    out = json.loads(stdout)
    assert workers["w1"].poll() is not None  # really killed, not finished

    # nothing lost: every segment proven once, the same batch as a serial run
    assert out["proven"] == 3 and out["batches"]["1"]["proven"] == 3
    assert out["batches"]["1"]["new_root"] == serial["batches"]["1"]["new_root"]
    vk, items = get_published_items(home)
    _, serial_items = get_published_items(reference)
    assert [inputs for _, inputs in items] == [inputs for _, inputs in serial_items]
    assert batch_verify(vk, items)

    # the surviving worker parsed the key once, however many segments it proved
    from distributed import Client

    with Client(address, timeout=30) as client:
        loads = client.run(lambda: __import__("prover.pipeline", fromlist=["x"]).get_key_load_count())
    assert list(loads.values()) == [1]
