"""`rollup tx`: transactions built, signed (by key, or by a wallet from --typed-data) and checked by the CLI, then executed by `rollup submit`; bad input is one readable line and a non-zero exit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload, write_workload
from rollup.node import Node
from rollup.signing import derive_l2_key, dev_account_key, get_address, sign, unsigned
from verifier.slots import get_signing_accounts
from verifier.encoding import compute_signing_digest, get_signature_fields
from verifier.wire import Genesis, RegisterKey, Transfer

runner = CliRunner()
SEED = 7  # the workload's seed: its accounts' TEST keys are dev_account_key(SEED, id)


def key_of(account: int) -> str:
    return "0x" + dev_account_key(SEED, account).hex()


def run(*args: str, code: int = 0, env: dict | None = None, input: str | None = None):
    result = runner.invoke(app, list(args), env=env, input=input)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result


def fails(*args: str, env: dict | None = None, code: str | None = None, one_line: bool = True) -> str:
    """The one readable error line of a refused command (and, with --json, its code)."""
    result = run(*args, "--json", code=1, env=env)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[0].startswith("error: ") and (len(errors) == 1 or not one_line), result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["message"] == "\n".join(errors).removeprefix("error: ")
    if code is not None:
        assert error["code"] == code, error
    return errors[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A node whose 3 accounts exist (deposits of the TEST keys of seed 7) after the first oracle
    update, each with its first L2 key registered (nonces 1)."""
    directory = tmp_path_factory.mktemp("tx")
    workload = generate_workload(WorkloadSpec(accounts=3, txs=0, seed=SEED, tree_depth=4), workers=1)
    write_workload(workload, directory / "setup.jsonl", directory / "genesis.json")
    node = Node.init(directory / "node", workload.genesis)
    domain = workload.genesis.signing_domain
    registrations = [
        sign(unsigned(RegisterKey, account=i, address=get_address(dev_account_key(SEED, i)), key_id=derive_l2_key(dev_account_key(SEED, i), domain).key_id, nonce=0),
             [dev_account_key(SEED, i)], domain)
        for i in range(3)
    ]
    assert node.submit(workload.transactions + registrations).n_accepted == len(workload.transactions) + 3
    node.close()
    return directory


@pytest.fixture
def home(template, tmp_path) -> str:
    shutil.copytree(template / "node", tmp_path / "node")
    return str(tmp_path / "node")


@pytest.fixture
def genesis(template) -> Genesis:
    return Genesis.model_validate_json((template / "genesis.json").read_text())


def account(home: str, number: int) -> dict:
    return json.loads(run("account", str(number), "--home", home, "--json").stdout)


def as_account(number: int) -> dict:
    return {"ROLLUP_PRIVATE_KEY": key_of(number)}


def test_transfer_and_withdraw_made_with_rollup_tx_are_executed_by_submit(home, tmp_path):
    out = str(tmp_path / "mine.jsonl")
    before = [account(home, 0), account(home, 1)]
    run("tx", "transfer", "--from", "0", "--to", "1", "--amount", "12.5USD", "--home", home, "--out", out, env=as_account(0))
    made = json.loads(run("tx", "withdraw", "--account", "0", "--amount", "2000000", "--home", home, "--out", out, "--json", env=as_account(0)).stdout)
    # the second transaction takes the nonce after the first's, read from the file (not yet submitted)
    lines = [json.loads(line) for line in Path(out).read_text().splitlines()]
    assert [line["nonce"] for line in lines] == [before[0]["nonce"], before[0]["nonce"] + 1]
    assert made["line"] == 2 and made["signed"] == ["owner"] and made["unsigned"] == []
    submitted = json.loads(run("submit", out, "--home", home, "--json", "--receipts").stdout)
    assert [r["status"] for r in submitted["receipts"]] == ["accepted", "accepted"]
    assert submitted["receipts"][1]["tx_hash"] == made["tx_hash"]
    after = [account(home, 0), account(home, 1)]
    assert after[0]["collateral"] == before[0]["collateral"] - 12_500_000 - 2_000_000
    assert after[1]["collateral"] == before[1]["collateral"] + 12_500_000
    assert after[0]["nonce"] == before[0]["nonce"] + 2
    batch = json.loads(run("batch", str(submitted["batches"][0]["batch"]), "--home", home, "--json", "--receipts").stdout)
    assert [r["type"] for r in batch["receipts"]] == ["transfer", "withdraw"]


def test_wallet_signs_the_typed_data_and_the_signature_is_attached(home, genesis):
    args = ("tx", "withdraw", "--account", "2", "--amount", "1000", "--home", home)
    typed = json.loads(run(*args, "--typed-data").stdout)
    assert set(typed) == {"types", "primaryType", "domain", "message"} and typed["primaryType"] == "Withdraw"
    assert typed["domain"]["chainId"] == genesis.l1_chain_id and typed["domain"]["verifyingContract"] == genesis.rollup_address
    assert typed["message"]["amount"] == "1000"  # uint256 as a decimal string: no JavaScript precision loss
    # a wallet (eth-account's eth_signTypedData_v4) signs it elsewhere
    signed = Account.sign_typed_data(bytes.fromhex(key_of(2)[2:]), full_message=typed)
    attached = json.loads(run(*args, "--signature", "0x" + signed.signature.hex(), "--json").stdout)
    by_key = json.loads(run(*args, "--json", env=as_account(2)).stdout)
    assert attached["transaction"] == by_key["transaction"]  # RFC 6979: the same signature either way
    assert attached["tx_hash"] == "0x" + signed.message_hash.hex()
    # an L2-signed type has no wallet typed data: the L2 key signs it
    transfer = ("tx", "transfer", "--from", "2", "--to", "0", "--amount", "1000", "--home", home)
    assert "signed with the account's L2 key" in fails(*transfer, "--typed-data", code="l2_signed")


def test_l2_signature_made_elsewhere_is_attached(home, genesis):
    """--signature on an L2-signed type: A || R8 || S made by the account's L2 key elsewhere."""
    from verifier.l2auth import compute_l2_message, sign_l2

    args = ("tx", "transfer", "--from", "2", "--to", "0", "--amount", "1000", "--home", home)
    by_key = json.loads(run(*args, "--json", env=as_account(2)).stdout)
    tx = unsigned(Transfer, **{k: v for k, v in by_key["transaction"].items() if k not in ("type", "signature")})
    key = derive_l2_key(dev_account_key(SEED, 2), genesis.signing_domain)
    signature = sign_l2(key.private, compute_l2_message(tx, genesis.signing_domain))
    attached = json.loads(run(*args, "--signature", signature, "--json").stdout)
    assert attached["transaction"] == by_key["transaction"]  # deterministic EdDSA: the same signature
    # another account's L2 key, and a malformed one
    other = sign_l2(derive_l2_key(dev_account_key(SEED, 1), genesis.signing_domain).private, compute_l2_message(tx, genesis.signing_domain))
    assert "made by L2 key" in fails(*args, "--signature", other, code="wrong_signer")
    assert "--signature: " in fails(*args, "--signature", "0x" + "11" * 160, code="bad_signature")


def test_perp_trade_signed_by_both_sides_in_turn_is_executed(home, tmp_path):
    out = str(tmp_path / "trades.jsonl")
    trade = ("tx", "perp-trade", "--maker", "0", "--taker", "1", "--market", "0", "--size", "3", "--price", "51USD", "--fee", "0.1USD", "--home", home)
    first = json.loads(run(*trade, "--out", out, "--json", env=as_account(0)).stdout)
    assert first["signed"] == ["maker"] and first["unsigned"] == ["taker"]
    assert "the maker has signed already" in fails("tx", "sign", out, "--line", "1", "--home", home, "--side", "maker", env=as_account(0), code="already_signed")
    # a trade is signed with L2 keys: no wallet typed data
    assert "L2 key" in fails("tx", "sign", out, "--line", "1", "--home", home, "--typed-data", code="l2_signed")
    second = json.loads(run("tx", "sign", out, "--line", "1", "--home", home, "--submit", "--json", env=as_account(1)).stdout)
    assert second["signed"] == ["taker"] and second["receipt"]["status"] == "accepted" and second["tx_hash"] == first["tx_hash"]
    assert [p["size"] for p in account(home, 1)["positions"]] == [3]
    assert [p["size"] for p in account(home, 0)["positions"]] == [-3]
    assert "signed by every party" in fails("tx", "sign", out, "--line", "1", "--home", home, env=as_account(1), code="already_signed")


def test_invalid_half_signed_trade_cannot_be_submitted_or_tampered_with(home, tmp_path):
    out = tmp_path / "trades.jsonl"
    trade = ("tx", "option-trade", "--buyer", "1", "--seller", "0", "--series", "2", "--quantity", "2", "--premium", "3USD", "--home", home)
    assert "the seller has not signed" in fails(*trade, "--submit", env=as_account(1), code="missing_signature")
    run(*trade, "--out", str(out), env=as_account(1))
    line = json.loads(out.read_text())
    out.write_text(json.dumps({**line, "quantity": 20}) + "\n")  # the seller is shown a bigger trade than the buyer signed
    # the buyer's L2 signature does not verify over the bigger trade
    message = fails("tx", "sign", str(out), "--line", "1", "--home", home, env=as_account(0), code="bad_signature")
    assert "the buyer's signature on the line is invalid" in message
    assert "--line 2: " in fails("tx", "sign", str(out), "--line", "2", "--home", home, env=as_account(0), code="invalid_line")


def test_invalid_signature_of_another_party_is_refused(home, genesis):
    args = ("tx", "withdraw", "--account", "1", "--amount", "1000", "--home", home)
    message = fails(*args, env=as_account(2), code="wrong_signer")
    assert f"the key is {get_address(dev_account_key(SEED, 2))}'s, but account 1 (the owner) belongs to" in message
    typed = json.loads(run(*args, "--typed-data").stdout)
    wrong = Account.sign_typed_data(bytes.fromhex(key_of(0)[2:]), full_message=typed).signature.hex()
    assert "the signature is" in fails(*args, "--signature", "0x" + wrong, code="wrong_signer")
    assert "--signature: " in fails(*args, "--signature", "0x1234", code="bad_signature")
    # a trade's side that is not the key's
    trade = ("tx", "perp-trade", "--maker", "0", "--taker", "1", "--market", "0", "--size", "1", "--price", "50USD", "--home", home)
    assert "signs for no unsigned side" in fails(*trade, env=as_account(2), code="wrong_signer")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("transfer", "--from", "0", "--to", "9", "--amount", "5"), "unknown_account", "--to: account 9 does not exist"),
        (("withdraw", "--account", "7", "--amount", "5"), "unknown_account", "--account: account 7 does not exist"),
        (("withdraw", "--account", "0", "--amount", "0"), "invalid_transaction", "--amount: input should be greater than 0"),
        (("withdraw", "--account", "0", "--amount", "-5"), "invalid_transaction", "--amount: input should be greater than 0"),
        (("withdraw", "--account", "0", "--amount", "1.5"), "invalid_amount", "not a whole number of micro-USD"),
        (("withdraw", "--account", "0", "--amount", "0.0000001USD"), "invalid_amount", "at most 6 decimals"),
        (("withdraw", "--account", "0", "--amount", "ten"), "invalid_amount", "'ten' is not an amount"),
        (("withdraw", "--account", "0", "--amount", str(2**64)), "invalid_transaction", "--amount: input should be less than"),
        (("perp-trade", "--maker", "0", "--taker", "1", "--market", "5", "--size", "1", "--price", "5"), "unknown_instrument", "is not a perpetual"),
        (("perp-trade", "--maker", "0", "--taker", "1", "--market", "99", "--size", "1", "--price", "5"), "unknown_instrument", "not in the genesis"),
        (("perp-trade", "--maker", "0", "--taker", "1", "--market", "0", "--size", "0", "--price", "5", "--side", "buyer"), "invalid_side", "signed by maker and taker"),
        (("settle-expired", "--sender", "0", "--account", "1", "--series", "0"), "unknown_instrument", "is not an option series"),
    ],
)
def test_invalid_input_is_one_line_and_exit_1(home, args, code, text):
    assert text in fails("tx", *args, "--home", home, env=as_account(0), code=code)


def test_invalid_key_sources(home, tmp_path):
    args = ("tx", "withdraw", "--account", "0", "--amount", "5", "--home", home)
    assert "no key to sign with" in fails(*args, env={"ROLLUP_PRIVATE_KEY": ""}, code="no_key")
    assert "not a private key" in fails(*args, env={"ROLLUP_PRIVATE_KEY": "0x1234"}, code="invalid_key")
    assert "choose one key source" in fails(*args, "--key", key_of(0), "--interactive", code="usage_error")
    # --key works, with a warning: it is in the shell history now
    result = run(*args, "--key", key_of(0))
    assert "warning: --key puts the private key in the shell history" in result.stderr
    assert json.loads(result.stdout)["account"] == 0  # no --out, no --submit: the line itself on stdout
    # --interactive reads it at a hidden prompt, never echoed
    result = run(*args, "--interactive", input=key_of(0) + "\n")
    assert key_of(0)[2:] not in result.output and json.loads(result.stdout.splitlines()[-1])["account"] == 0


def test_offline_signing_with_genesis_gives_the_line_the_node_gives(home, template):
    args = ("tx", "transfer", "--from", "1", "--to", "2", "--amount", "77")
    online = run(*args, "--home", home, env=as_account(1)).stdout
    offline = ("--genesis", str(template / "genesis.json"))
    assert "pass --nonce" in fails(*args, *offline, env=as_account(1), code="missing_nonce")
    assert run(*args, *offline, "--nonce", "1", env=as_account(1)).stdout == online  # 1: after its key registration
    trade = ("tx", "perp-trade", "--maker", "0", "--taker", "1", "--market", "0", "--size", "1", "--price", "5", *offline)
    assert "--side" in fails(*trade, "--maker-nonce", "0", "--taker-nonce", "0", env=as_account(0), code="invalid_side")
    line = json.loads(run(*trade, "--maker-nonce", "0", "--taker-nonce", "0", "--side", "maker", env=as_account(0)).stdout)
    assert line["maker_signature"] != "0x" + "00" * 160 and line["taker_signature"] == "0x" + "00" * 160


@pytest.mark.parametrize(
    "args",
    [
        ("liquidate", "--liquidator", "0", "--account", "1", "--instrument", "0", "--size", "-1"),
        ("settle-expired", "--sender", "0", "--account", "1", "--series", "3"),
        ("option-trade", "--buyer", "0", "--seller", "1", "--series", "2", "--quantity", "1", "--premium", "1.5USD", "--side", "buyer"),
    ],
)
def test_every_type_signs_the_digest_the_node_checks(home, genesis, args):
    from rollup.txfile import TRANSACTION_ADAPTER
    from verifier.l2auth import compute_l2_message, verify_l2_signature

    made = json.loads(run("tx", *args, "--home", home, "--json", env=as_account(0)).stdout)
    tx = TRANSACTION_ADAPTER.validate_python(made["transaction"])
    assert made["tx_hash"] == "0x" + compute_signing_digest(tx, genesis.signing_domain).hex()
    first = getattr(tx, get_signature_fields(type(tx))[0])
    # signed by the L2 key account 0 registered, over the transaction's record
    key_id = verify_l2_signature(compute_l2_message(tx, genesis.signing_domain), first)
    assert key_id == derive_l2_key(dev_account_key(SEED, 0), genesis.signing_domain).key_id


def test_party_table_agrees_with_the_verifier():
    from rollup.cli.tx import KINDS

    for kind in KINDS.values():
        names = [n for n in kind.model.model_fields if n not in ("type",) and n not in get_signature_fields(kind.model)]
        fields = {name: "0x" + "11" * 20 if name == "address" else 1 + i for i, name in enumerate(names)}
        tx = unsigned(kind.model, **fields)
        assert [(getattr(tx, p.account_field), getattr(tx, p.nonce_field)) for p in kind.parties] == [tuple(x) for x in get_signing_accounts(tx)]
        assert tuple(p.signature_field for p in kind.parties) == get_signature_fields(kind.model)


def test_submit_counts_invalid_lines_not_errors(home, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "withdraw", "account": -1, "amount": -2, "nonce": "x"}\n{"type": "transfer"}\n')
    message = fails("submit", str(bad), "--home", home, code="invalid_file", one_line=False).split("\n")[0]
    assert "2 invalid line(s) of 2 (" in message


def test_json_errors_of_every_kind(tmp_path):
    missing = str(tmp_path / "none")
    assert "rollup init" in fails("status", "--home", missing, code="user_error")
    usage = run("tx", "withdraw", "--account", "x", "--json", code=2)
    assert json.loads(usage.stdout)["error"]["code"] == "usage_error"
    # a command that printed its JSON verdict keeps stdout one document
    verdict = run("proof", "verify", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"), "--json", code=1)
    assert json.loads(verdict.stdout)["error"]["message"].startswith("file not found")


def test_help_texts_are_not_wrapped_mid_sentence():
    import typer.main

    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    commands = list(walk(typer.main.get_command(app), "rollup"))
    assert len(commands) > 30
    for path, command in commands:
        for paragraph in (command.help or "").split("\n\n"):
            lines = paragraph.split("\n")
            # a paragraph is one line, unless it is an indented block (a list)
            assert len(lines) == 1 or all(line.startswith(" ") for line in lines[1:]), (path, paragraph)
        for param in command.params:
            assert "\n" not in (getattr(param, "help", None) or ""), (path, param.name)


def test_real_process_signs_from_a_keystore_and_submits(home, tmp_path):
    """The console entry point in a subprocess: import a key into a keystore (password from the
    environment), then a withdrawal signed from it is executed on the node."""
    env = {**os.environ, "ROLLUP_PRIVATE_KEY": key_of(2), "ROLLUP_PASSWORD": "correct horse", "COLUMNS": "200"}
    rollup = [sys.executable, "-m", "rollup.cli.main"]
    imported = subprocess.run([*rollup, "key", "import", "trader", "--home", home, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["address"] == get_address(dev_account_key(SEED, 2))
    del env["ROLLUP_PRIVATE_KEY"]
    before = account(home, 2)
    done = subprocess.run(
        [*rollup, "tx", "withdraw", "--account", "2", "--amount", "3USD", "--keystore", "trader", "--home", home, "--submit", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["receipt"]["status"] == "accepted"
    assert account(home, 2)["collateral"] == before["collateral"] - 3_000_000
    wrong = subprocess.run(
        [*rollup, "tx", "withdraw", "--account", "2", "--amount", "3USD", "--keystore", "trader", "--home", home],
        env={**env, "ROLLUP_PASSWORD": "wrong"}, capture_output=True, text=True, timeout=120,
    )
    assert wrong.returncode == 1 and wrong.stderr.strip().splitlines() == [f"error: cannot decrypt {Path(home) / 'keystore' / 'trader.json'}: wrong password"]
