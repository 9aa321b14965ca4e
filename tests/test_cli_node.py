"""The node's CLI through typer's CliRunner: exit codes, --json output, readable errors."""

from __future__ import annotations

import json

import pytest

from verifier.state_tree import compute_path_root, compute_state_root, get_tree_shape
from typer.testing import CliRunner

from rollup.cli.main import app

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def files(tmp_path, small_workload_files):
    txs, genesis = small_workload_files
    return txs, genesis, str(tmp_path / "home")


@pytest.fixture
def node_home(files):
    txs, genesis, home = files
    run("init", "--home", home, "--genesis", str(genesis), "--json")
    return home


def test_init_submit_status_account_batch(files, small_workload):
    txs, genesis, home = files
    init = json.loads(run("init", "--home", home, "--genesis", str(genesis), "--max-batch-txs", "16", "--json").output)
    out = json.loads(run("submit", str(txs), "--home", home, "--json").output)
    assert out["transactions"] == len(small_workload.transactions)
    assert out["rejected"] == small_workload.summary["rejected"]
    assert out["prev_root"] == init["root"] != out["new_root"]
    # batches of at most the node's bound, in order
    batches = out["batches"]
    assert [b["batch"] for b in batches] == list(range(1, len(batches) + 1)) and len(batches) > 1
    assert all(1 <= b["accepted"] and b["transactions"] <= init["max_batch_txs"] for b in batches)
    status = json.loads(run("status", "--home", home, "--json").output)
    assert status["batch"] == len(batches) and status["root"] == out["new_root"] and status["accounts"] == 20
    account = json.loads(run("account", "0", "--home", home, "--json", "--proof").output)
    assert account["nonce"] > 0 and account["equity"] >= account["initial_margin"] >= account["maintenance_margin"]
    proof = account["proof"]
    assert account["root"] == out["new_root"] and len(proof["path"]) == small_workload.genesis.account_tree_depth
    # the proof opens the state root: the leaf on its 4-ary path, beside the markets and globals
    path = tuple(tuple(int(x) for x in level) for level in proof["path"])
    accounts_root = compute_path_root(0, int(proof["leaf"]), path, get_tree_shape(small_workload.genesis))
    state_root = compute_state_root(accounts_root, int(proof["markets_hash"]), int(proof["globals_hash"]))
    assert "0x" + state_root.to_bytes(32, "big").hex() == out["new_root"]
    batch = json.loads(run("batch", "1", "--home", home, "--json", "--receipts", "--diff").output)
    assert batch["new_root"] == batches[0]["new_root"] and len(batch["receipts"]) == batches[0]["transactions"]
    assert len(batch["diff"]) == batches[0]["touched_leaves"]
    assert "batch 1" in run("batch", "1", "--home", home).output


def test_invalid_file_is_refused_whole_with_line_numbers(files, node_home, tmp_path):
    txs, _, _ = files
    lines = txs.read_text().splitlines()
    lines[2] = lines[2].replace('"amount":', '"amount":-')
    lines[5] = "{not json"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    result = run("submit", str(bad), "--home", node_home, code=1)
    assert "line 3, field 'amount'" in result.output and "line 6: not valid JSON" in result.output
    assert "nothing was executed" in result.output
    status = json.loads(run("status", "--home", node_home, "--json").output)
    assert status["batch"] == 0 and status["accounts"] == 0


def test_invalid_commands_name_what_is_wrong(files, node_home, tmp_path):
    assert "does not exist" in run("account", "12345", "--home", node_home, code=1).output
    assert "batch 7 does not exist" in run("batch", "7", "--home", node_home, code=1).output
    assert "rollup init" in run("status", "--home", str(tmp_path / "none"), code=1).output
    assert "already exists" in run("init", "--home", node_home, code=1).output
    assert "file not found" in run("submit", str(tmp_path / "missing.jsonl"), "--home", node_home, code=1).output
    bad_genesis = tmp_path / "g.json"
    bad_genesis.write_text('{"oracle_address": "0x12", "instruments": []}')
    assert "oracle_address" in run("init", "--home", str(tmp_path / "h2"), "--genesis", str(bad_genesis), code=1).output


def test_schema_prints_json_schema():
    schema = json.loads(run("schema").output)
    assert set(schema["discriminator"]["mapping"]) >= {"deposit", "perp_trade", "oracle_update"}
    assert json.loads(run("schema", "perp_trade").output)["properties"]["size"]["type"] == "integer"
    assert "unknown model" in run("schema", "nope", code=1).output


def test_risk_shows_greeks_and_margin(files, node_home):
    txs, _, _ = files
    run("submit", str(txs), "--home", node_home, "--json")
    out = json.loads(run("risk", "0", "--home", node_home, "--json").output)
    assert out["initial_margin"] >= out["maintenance_margin"] >= 0
    assert out["by_underlying"]  # the hot account trades
    assert "--vol" in run("risk", "0", "--home", node_home, "--vol", "-1", code=1).output


def test_invalid_demo_options(tmp_path):
    assert "--proof-slots must be >= 1, got 0" in run("demo", "--home", str(tmp_path), "--proof-slots", "0", code=1).output
    assert "--workers must be >= 0, got -1" in run("demo", "--home", str(tmp_path), "--workers", "-1", code=1).output


def test_demo_runs_end_to_end(tmp_path):
    out = json.loads(run("demo", "--home", str(tmp_path), "--accounts", "30", "--txs", "200", "--proof-txs", "6", "--proof-slots", "2", "--json").output)
    assert out["accepted"] > 0 and out["new_root"].startswith("0x") and out["new_root"] != out["prev_root"]
    assert out["workers"] == 2 and out["parallel_equals_sequential"] is True
    proof = out["proof"]
    assert proof["valid"] is True and proof["segments"] >= 1 and proof["transactions"] >= 6 and proof["slots"] == 2
    # what was proven was settled: the L1's root is the proven node's
    settled = proof["settlement"]
    assert settled["gas_used"] > 0
    proven = json.loads(run("status", "--home", out["folder"] + "/proven", "--json").output)
    assert settled["new_root"] == proven["root"]
    status = json.loads(run("status", "--home", out["folder"] + "/node", "--json").output)
    assert status["root"] == out["new_root"]
    # a second run reuses the cached keys
    again = json.loads(run("demo", "--home", str(tmp_path), "--accounts", "30", "--txs", "50", "--proof-txs", "6", "--proof-slots", "2", "--json").output)
    assert again["proof"]["setup_cached"] is True and again["proof"]["vk_hash"] == out["proof"]["vk_hash"]
