"""Settlement through `--rpc-url` on a real JSON-RPC node (Foundry's anvil, from npm): deploy, L1
deposits, submit, prove, settle, and the contract's root is the node's. Skipped when anvil is not
installed (`npm ci` installs it on linux-amd64)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.signing import dev_account_key, get_address

pytestmark = pytest.mark.slow

runner = CliRunner()
SEED = 5


def run_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def rpc_url():
    from contracts.rpcnode import RpcNodeError, find_anvil, get_free_port, start_local_rpc_node

    try:
        find_anvil()
    except RpcNodeError as exc:
        pytest.skip(f"no local JSON-RPC node to settle on: {exc}")
    with start_local_rpc_node(get_free_port()) as url:
        yield url


def test_settle_through_rpc(rpc_url: str, tmp_path: Path):
    from contracts.chain import L1
    from rollup.genesis import compute_create_address

    # the genesis names this L1 and where the deployment will put the Rollup contract (the
    # signatures' EIP-712 domain): the node's first account, at its next nonce
    l1 = L1.rpc(rpc_url)
    rollup_address = compute_create_address(l1.default_sender, l1.w3.eth.get_transaction_count(l1.default_sender))
    spec = WorkloadSpec(accounts=2, perps=1, series=1, txs=1, seed=SEED, l1_chain_id=l1.chain_id, rollup_address=rollup_address, tree_depth=2)
    workload = generate_workload(spec, workers=1)
    deposits = [tx for tx in workload.transactions if tx.type == "deposit"]
    assert len(deposits) == 2
    (tmp_path / "genesis.json").write_text(workload.genesis.model_dump_json())
    home = str(tmp_path / "home")
    run_json("init", "--home", home, "--genesis", str(tmp_path / "genesis.json"), "--max-batch-txs", "8")
    run_json("setup", "--slots", "1", "--home", home)
    deployed = run_json("l1", "deploy", "--rpc-url", rpc_url, "--home", home)
    assert deployed["rollup"] == rollup_address
    # recorded per chain id (anvil's 31337), apart from the embedded L1's
    assert (Path(home) / "l1" / "deployment-31337.json").exists()
    assert not (Path(home) / "l1" / "chain").exists()
    status = run_json("l1", "status", "--rpc-url", rpc_url, "--home", home)
    assert status["rollup"] == deployed["rollup"] and status["batch"] == 0
    out = tmp_path / "l2-deposits.jsonl"
    for i, tx in enumerate(deposits):
        key = dev_account_key(SEED, i)
        assert get_address(key) == tx.address
        info = run_json("l1", "deposit", "--amount", str(tx.amount), "--key", "0x" + key.hex(), "--out", str(out), "--rpc-url", rpc_url, "--home", home)
        assert info["deposit_id"] == tx.deposit_id
    # the L2 transactions the L1 deposits produced are the workload's own
    assert out.read_text().splitlines() == [tx.model_dump_json() for tx in deposits]
    assert run_json("submit", str(out), "--home", home, "--executor", "serial")["accepted"] == 2
    run_json("prove", "--home", home, "--executor", "serial")
    settled = run_json("settle", "--rpc-url", rpc_url, "--home", home)["settled"]
    assert [r["batch"] for r in settled] == [1]
    assert settled[0]["gas_used"] > 0 and settled[0]["transactions"] == 2
    status = run_json("l1", "status", "--rpc-url", rpc_url, "--home", home)
    node = run_json("status", "--home", home)
    assert status["batch"] == 1 and status["state_root"] == node["root"]
    assert status["deposits_consumed"] == status["deposits_queued"] == 2
    assert status["balance_wei"] == sum(tx.amount for tx in deposits) * 10**6
    print("rpc settle gas:", settled[0]["gas_used"])
