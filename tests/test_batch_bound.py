"""Every committed batch can settle: at least one accepted transaction, at most what one L1
settlement takes (security review, finding 2: a batch of rejected transactions, or one larger
than the settlement bound, was committed; the contract refused it and no later batch could settle).
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.deployment import get_max_segments
from prover.transition_segments import cut_segments
from rollup.cli.main import app
from rollup.node import DEFAULT_MAX_BATCH_TXS, MAX_BATCH_ORACLE_UPDATES, Node, cut_batches
from rollup.signing import dev_account_key, sign, unsigned
from verifier.wire import Withdraw

runner = CliRunner()


def invalid_withdraw(genesis) -> Withdraw:
    """A withdrawal from an account no deposit created: rejected by the rules."""
    return sign(unsigned(Withdraw, account=12345, amount=1, nonce=0), [dev_account_key(3, 0)], genesis.signing_domain)


def test_invalid_only_submission_commits_no_batch(node_factory, small_workload):
    node = node_factory(small_workload.genesis)
    submission = node.submit([invalid_withdraw(small_workload.genesis)])
    # nothing committed: the next batch is still batch 1, the root is the genesis root
    assert node.batch_number == 0
    assert submission.batches == [] and submission.new_root == submission.prev_root
    # the rejection is reported with its reason
    (receipt,) = submission.unbatched
    assert receipt.status == "rejected" and "unknown account 12345" in receipt.reason
    assert submission.receipts == [receipt]
    # and the node goes on: the next accepted transactions are batch 1
    assert node.submit(small_workload.transactions[:2]).batch.number == 1


def test_submission_larger_than_the_bound_commits_settleable_batches_in_order(node_factory, small_workload):
    transactions = small_workload.transactions
    assert node_factory(small_workload.genesis, name="default").max_batch_txs == DEFAULT_MAX_BATCH_TXS
    bound = 8
    node = node_factory(small_workload.genesis, max_batch_txs=bound)
    submission = node.submit(transactions)
    assert len(submission.batches) >= -(-len(transactions) // bound) - len(submission.unbatched)
    for expected, batch in enumerate(submission.batches, start=1):
        assert batch.number == expected and 1 <= batch.n_accepted and len(batch.receipts) <= bound
    assert [r.index for r in submission.receipts] == list(range(len(transactions)))
    # cutting a submission into batches changes nothing about execution: the state is the one
    # batch's of an execution-only node
    reference = node_factory(small_workload.genesis, name="reference")
    one = reference.submit(transactions, max_batch_txs=None)
    assert one.batch.new_root == submission.new_root == node.root
    assert [r.model_dump(exclude={"index"}) for r in one.receipts] == [r.model_dump(exclude={"index"}) for r in submission.receipts]


def test_batch_bound_is_a_node_setting_kept_in_the_store(tmp_path, small_workload):
    node = Node.init(tmp_path / "node", small_workload.genesis, max_batch_txs=5)
    node.close()
    node = Node.open(tmp_path / "node")
    try:
        assert node.max_batch_txs == 5
        assert [len(b.receipts) for b in node.submit(small_workload.transactions[:12]).batches] == [5, 5, 2]
    finally:
        node.close()


def test_cli_submit_reports_every_batch_and_unbatched_rejections(tmp_path, small_workload_files, small_workload):
    txs, genesis = small_workload_files
    home = str(tmp_path / "home")
    assert runner.invoke(app, ["init", "--home", home, "--genesis", str(genesis), "--max-batch-txs", "100", "--json"]).exit_code == 0
    result = runner.invoke(app, ["submit", str(txs), "--home", home, "--executor", "serial", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    n = len(small_workload.transactions)
    assert [b["batch"] for b in out["batches"]] == list(range(1, -(-n // 100) + 1))
    assert [b["transactions"] for b in out["batches"]] == [100] * (n // 100) + [n % 100]
    assert out["transactions"] == n and out["new_root"] == out["batches"][-1]["new_root"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(invalid_withdraw(small_workload.genesis).model_dump_json() + "\n")
    result = runner.invoke(app, ["submit", str(bad), "--home", home, "--executor", "serial"])
    assert result.exit_code == 0, result.output
    assert "no batch committed" in result.output and "unknown account 12345" in result.output
    status = json.loads(runner.invoke(app, ["status", "--home", home, "--json"]).stdout)
    assert status["batch"] == len(out["batches"])


class _Tx:
    def __init__(self, type_: str) -> None:
        self.type = type_


@settings(max_examples=300, deadline=None)
@given(
    types=st.lists(st.sampled_from(["oracle_update", "perp_trade", "transfer"]), max_size=80),
    bound=st.integers(1, 24),
    n_slots=st.integers(1, 9),
)
def test_every_batch_fits_the_segments_the_contract_is_compiled_for(types, bound, n_slots):
    """Whatever the mix of oracle updates (each opens a segment), a part the node commits as a
    batch needs at most `get_max_segments` segments: what `rollup l1 deploy` sizes the contract for."""
    txs = [_Tx(t) for t in types]
    parts = list(cut_batches(txs, bound))
    # the parts cover the submission in order
    assert [i for start, end in parts for i in range(start, end)] == list(range(len(txs)))
    for start, end in parts:
        part = txs[start:end]
        assert 1 <= len(part) <= bound
        assert sum(tx.type == "oracle_update" for tx in part) <= MAX_BATCH_ORACLE_UPDATES
        segments = cut_segments(part, [()] * len(part), n_slots)
        assert len(segments) <= get_max_segments(bound, MAX_BATCH_ORACLE_UPDATES, n_slots)
