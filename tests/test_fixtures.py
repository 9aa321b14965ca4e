"""The workload generator: deterministic, signed, replayable through the real rules, knobs respected."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import (
    FixtureError,
    WorkloadSpec,
    generate_workload,
    parse_mix,
    write_workload,
)
from rollup.rules import process_transaction
from rollup.state import State
from verifier.encoding import InvalidSignature
from verifier.l2auth import check_signers
from verifier.wire import Genesis, Transaction

SMALL = WorkloadSpec(accounts=30, txs=300, contention=0.2, invalid_share=0.1, seed=11)
PARTY_FIELDS = ("account", "sender", "recipient", "maker", "taker", "buyer", "seller", "liquidator")
TX_ADAPTER = TypeAdapter(Transaction)


@pytest.fixture(scope="module")
def small():
    return generate_workload(SMALL, workers=1)


def dump(workload, tmp_path: Path, name: str) -> tuple[bytes, bytes]:
    out, genesis = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.genesis.json"
    write_workload(workload, out, genesis)
    return out.read_bytes(), genesis.read_bytes()


def test_same_seed_same_bytes_any_worker_count(small, tmp_path: Path) -> None:
    first = dump(small, tmp_path, "a")
    assert dump(generate_workload(SMALL, workers=2), tmp_path, "b") == first
    other = dump(generate_workload(WorkloadSpec(**{**SMALL.__dict__, "seed": 12}), workers=1), tmp_path, "c")
    assert other[0] != first[0]


def test_file_replays_through_signatures_and_rules(small, tmp_path: Path) -> None:
    """Parse the file, recover every signer from its signature, run the rules from genesis: the
    receipts reject exactly the transactions the generator made invalid."""
    lines, genesis_bytes = dump(small, tmp_path, "w")
    genesis = Genesis.model_validate_json(genesis_bytes)
    txs = [TX_ADAPTER.validate_json(line) for line in lines.splitlines()]
    assert txs == small.transactions
    state = State.from_genesis(genesis)
    statuses, bad_signatures = [], 0
    for tx in txs:
        try:
            signers = check_signers(tx, genesis.signing_domain)
        except InvalidSignature:  # the signature pass rejects it before execution
            statuses.append("rejected")
            bad_signatures += 1
            continue
        statuses.append(process_transaction(state, tx, signers).status)
    assert statuses.count("rejected") == small.summary["rejected"] == small.summary["intended_invalid"] > 0
    assert bad_signatures == small.summary["rejected_reasons"].get("invalid signature", 0) > 0
    assert set(statuses[: small.summary["setup"]]) == {"accepted"}
    assert len(txs) == SMALL.accounts + 1 + small.summary["registrations"] + SMALL.txs
    # an account registers its L2 key before its first L2 signature: every first registration is
    # accepted, and no L2-signed transaction signed by a valid key precedes its signer's registration
    assert 0 < small.summary["registrations"] <= SMALL.accounts


def test_setup_creates_and_funds_every_account(small) -> None:
    setup = small.transactions[: small.summary["setup"]]
    assert [tx.type for tx in setup] == ["deposit"] * SMALL.accounts + ["oracle_update"]
    assert [tx.account for tx in setup[:-1]] == list(range(SMALL.accounts))
    assert len({tx.address for tx in setup[:-1]}) == SMALL.accounts


def test_mix_is_respected_roughly() -> None:
    spec = WorkloadSpec(accounts=60, txs=1500, mix={"perp_trade": 60, "transfer": 30, "withdraw": 10}, seed=5)
    workload = generate_workload(spec, workers=1)
    counts = Counter(tx.type for tx in workload.transactions[workload.summary["setup"] :])
    # beside the mix: each signer's first L2 key registration
    assert counts.pop("register_key") == workload.summary["registrations"]
    assert set(counts) <= {"perp_trade", "transfer", "withdraw"}
    for kind, weight in spec.mix.items():
        assert abs(counts[kind] / spec.txs - weight / 100) < 0.05, counts


def involves_hot_account(tx) -> bool:
    return any(getattr(tx, f, None) == 0 for f in PARTY_FIELDS)


@pytest.mark.parametrize("contention", [0.0, 0.5])
def test_contention_share(contention: float) -> None:
    spec = WorkloadSpec(accounts=40, txs=800, contention=contention, seed=2,
                        mix={"perp_trade": 70, "transfer": 20, "option_trade": 10})
    workload = generate_workload(spec, workers=1)
    mixed = workload.transactions[workload.summary["setup"] :]
    share = sum(involves_hot_account(tx) for tx in mixed) / len(mixed)
    assert abs(share - contention) < 0.08, share
    hot_perps = [tx for tx in mixed if tx.type == "perp_trade" and involves_hot_account(tx)]
    assert all(tx.market == 0 for tx in hot_perps)


def test_invalid_share() -> None:
    workload = generate_workload(WorkloadSpec(accounts=30, txs=600, invalid_share=0.2, seed=4), workers=1)
    assert abs(workload.summary["rejected"] / 600 - 0.2) < 0.06


def test_parse_mix() -> None:
    assert parse_mix("perp_trade=50, transfer=10,") == {"perp_trade": 50, "transfer": 10}
    with pytest.raises(FixtureError, match="unknown transaction type"):
        parse_mix("swap=1")
    with pytest.raises(FixtureError, match="TYPE=WEIGHT"):
        parse_mix("perp_trade=-1")


@pytest.mark.parametrize(
    "changes, reason",
    [(dict(accounts=1), "at least 2"), (dict(contention=1.5), "fractions"), (dict(mix={"transfer": 0}), "not all 0")],
)
def test_invalid_spec(changes, reason: str) -> None:
    with pytest.raises(FixtureError, match=reason):
        generate_workload(WorkloadSpec(**{**SMALL.__dict__, **changes}), workers=1)


# --- CLI -------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_writes_workload_and_genesis(tmp_path: Path) -> None:
    out = tmp_path / "load.jsonl"
    args = ["fixtures", "--accounts", "12", "--txs", "80", "--contention", "0.1", "--invalid-share", "0.05",
            "--seed", "3", "--out", str(out), "--workers", "1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["transactions"] == 12 + 1 + summary["registrations"] + 80 == len(out.read_text().splitlines())
    assert summary["genesis"] == str(tmp_path / "load.genesis.json")
    Genesis.model_validate_json((tmp_path / "load.genesis.json").read_text())
    again = runner.invoke(app, args[:-3] + ["--out", str(tmp_path / "again.jsonl"), "--json"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()


def test_cli_refuses_a_bad_mix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fixtures", "--mix", "perp_trade=x", "--out", str(tmp_path / "x.jsonl"), "--json"])
    assert result.exit_code == 1
    assert "TYPE=WEIGHT" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.jsonl").exists()
