"""The service proves and settles in the background: a tiny rollup (a 16-account tree, one
perpetual, 1-slot segments) whose deposit was queued on the embedded L1; the service batches the
L2 deposit and starts proving it; the service is stopped in the middle of the proof (which it
abandons) and started again, and the batch is proven on a worker process and settled on the L1,
each step on /ws/batches, with the event loop answering meanwhile. (One batch: proving is the
slow part.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from contracts.chain import L1
from contracts.deployment import GAS_MONEY, UNIT_WEI, open_contracts
from contracts.transition_client import deposit as l1_deposit
from prover.pipeline import run_setup
from rollup.cli.l1 import deploy_for_node, load_deployment
from rollup.genesis import default_genesis
from rollup.node import Node
from rollup.publish import get_genesis
from rollup.signing import dev_account_key, dev_oracle_key, get_address
from rollup.storage import Store
from service.app import create_app
from service.batcher import BatchOptions
from tests.service_helpers import SEED, body, run_server

SLOTS = 1
AMOUNT = 1_000_000  # collateral units (micro-USD)


@pytest.fixture
def deployed_home(tmp_path) -> tuple[Path, object]:
    """A node with its keys, its contracts on the embedded L1 and one deposit queued there."""
    genesis = default_genesis(get_address(dev_oracle_key(SEED)), n_perps=1, n_series=0, tree_depth=2)
    home = tmp_path / "home"
    Node.init(home, genesis, max_batch_txs=4).close()
    store = Store.open(home)
    l1 = L1.open(home / "l1" / "chain")
    try:
        run_setup(home, store, SLOTS, seed=11)
        contracts = open_contracts(l1, deploy_for_node(l1, home, store), get_genesis(store))
        key = dev_account_key(SEED, 0)
        l1.fund(get_address(key), AMOUNT * UNIT_WEI + GAS_MONEY)
        queued = l1_deposit(l1, contracts, None, AMOUNT, key)
    finally:
        store.close()
        l1.save()
    return home, queued


@pytest.mark.slow
def test_batches_are_proven_and_settled_in_the_background(deployed_home) -> None:
    home, queued = deployed_home
    options = BatchOptions(batch_size=1, batch_seconds=0.1, prove=True, proof_slots=SLOTS)
    # first run: the batch is executed and proving starts; the service stops in the middle of it
    with run_server(create_app(home, options=options)) as addr:
        with ws_connect(f"ws://{addr}/ws/batches") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
            assert httpx.post(f"http://{addr}/transactions", json=body(queued)).status_code == 202
            first = [json.loads(ws.recv(timeout=60)) for _ in range(2)]
        assert [e["state"] for e in first] == ["executed", "proving"]
        stopping = time.monotonic()
    # the proof in progress was abandoned, not waited for (it takes longer than this)
    assert time.monotonic() - stopping < 10
    # second run: the unfinished batch is proven again and settled
    with run_server(create_app(home, options=options)) as addr:
        base = f"http://{addr}"
        with ws_connect(f"ws://{addr}/ws/batches") as ws:
            snapshot = json.loads(ws.recv(timeout=10))
            events = [e for e in snapshot["batches"] if e["state"] != "proving"]  # proving may have restarted already
            assert [(b["number"], b["n_accepted"]) for b in snapshot["batches"]] == [(1, 1)]
            latencies = []
            while not any(e["number"] == 1 and e["state"] in ("settled", "failed") for e in events):
                events.append(json.loads(ws.recv(timeout=120)))
                # the event loop answers while proofs are made and the L1 settles
                started = time.perf_counter()
                assert httpx.get(f"{base}/status").status_code == 200
                latencies.append(time.perf_counter() - started)
        assert [e["state"] for e in events][-2:] == ["proven", "settled"], events
        assert all(e["prev_sequence"] == e["sequence"] - 1 for e in events if e["type"] == "batch")
        settled = httpx.get(f"{base}/batches/1").json()
        assert settled["info"]["gas_used"] > 0 and settled["info"]["segments"] == 1
        status = httpx.get(f"{base}/status").json()
        assert status["batcher"]["prover"]["state"] == "ready" and status["batcher"]["prover"]["error"] is None
        assert status["node"]["batch"] == 1  # executed once: the restart proved it, did not re-execute it
        node_root = status["node"]["root"]
        assert max(latencies) < 2.0, latencies
        assert httpx.get(f"{base}/accounts/0").json()["collateral"] == AMOUNT
    # the L1 holds the node's root after the batch
    l1 = L1.open(home / "l1" / "chain")
    store = Store.open(home)
    contracts = open_contracts(l1, load_deployment(home, l1), get_genesis(store))
    store.close()
    assert contracts.rollup.functions.batch_number().call() == 1
    assert "0x" + contracts.rollup.functions.state_root().call().to_bytes(32, "big").hex() == node_root
