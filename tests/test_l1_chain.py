"""The L1 connection (contracts/chain.py): one suite over the embedded py-evm chain and a local
JSON-RPC node (anvil from npm, skipped when not installed), plus the embedded chain's persistence
across real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import vyper

from contracts.build import Compiled
from contracts.chain import STATE_FILE, STATE_MAGIC, L1, L1Error, L1Revert, L1StateError, get_address, get_dev_key
from contracts.rpcnode import RpcNodeError, find_anvil, get_free_port, start_local_rpc_node
from rollup.signing import dev_account_key
from verifier.curve import BN254
from verifier.evm import encode_g1, encode_g2

REPO = Path(__file__).resolve().parents[1]
ETHER = 10**18

# a counter that refuses 13, and reads of data contracts and precompiles
PROBE_SOURCE = """
stored: public(uint256)

@deploy
def __init__(x: uint256):
    self.stored = x

@external
@payable
def set(x: uint256):
    assert x != 13, "thirteen is unlucky"
    self.stored = x

@external
@view
def read_data(data: address, offset: uint256) -> Bytes[32]:
    return slice(data.code, 1 + offset, 32)

@external
@view
def precompile(target: address, data: Bytes[384]) -> Bytes[64]:
    return raw_call(target, data, max_outsize=64, is_static_call=True)
"""


def compile_probe() -> Compiled:
    out = vyper.compile_code(PROBE_SOURCE, output_formats=["abi", "bytecode", "bytecode_runtime"])
    return Compiled("Probe", out["abi"], out["bytecode"], (len(out["bytecode_runtime"]) - 2) // 2)


@pytest.fixture(scope="module")
def probe() -> Compiled:
    return compile_probe()


@pytest.fixture(scope="module")
def rpc_url() -> Iterator[str]:
    try:
        find_anvil()
    except RpcNodeError as exc:
        pytest.skip(str(exc))
    with start_local_rpc_node(get_free_port()) as url:
        yield url


@pytest.fixture(params=["embedded", "anvil"])
def l1(request: pytest.FixtureRequest) -> L1:
    if request.param == "embedded":
        return L1.embedded()
    return L1.rpc(request.getfixturevalue("rpc_url"))


def funded_user(l1: L1, index: int, wei: int = ETHER) -> bytes:
    """A project TEST key (not one of the node's accounts), funded from the L1's dev account."""
    key = dev_account_key(seed=61, index=index)
    l1.fund(get_address(key), wei)
    return key


# ---- one suite, both L1s ----


def test_deploy_and_send(l1: L1, probe: Compiled) -> None:
    counter = l1.deploy(probe, 5)
    receipt = l1.send(counter.functions.set(7), "set 7")
    assert receipt["status"] == 1
    assert counter.functions.stored().call() == 7


def test_invalid_call_reverts_with_the_contracts_reason(l1: L1, probe: Compiled) -> None:
    counter = l1.deploy(probe, 5)
    with pytest.raises(L1Revert) as info:
        l1.send(counter.functions.set(13), "set 13", gas=200_000)
    assert info.value.reason == "thirteen is unlucky"
    assert str(info.value) == "set 13 reverted: thirteen is unlucky"
    assert counter.functions.stored().call() == 5  # nothing changed


def test_invalid_call_out_of_gas(l1: L1, probe: Compiled) -> None:
    counter = l1.deploy(probe, 5)
    with pytest.raises(L1Revert, match="out of gas") as info:
        l1.send(counter.functions.set(8), "set 8", gas=22_000)
    assert "22,000" in info.value.reason
    assert counter.functions.stored().call() == 5


def test_data_contract_round_trip(l1: L1, probe: Compiled) -> None:
    blob = os.urandom(24_575)  # the largest a data contract holds (EIP-170, after the STOP byte)
    data = l1.deploy_data(blob)
    assert l1.w3.eth.get_code(data) == b"\x00" + blob
    reader = l1.deploy(probe, 0)
    for offset in (0, 1000, len(blob) - 32):
        assert reader.functions.read_data(data, offset).call() == blob[offset : offset + 32]


def test_invalid_data_contract_too_large(l1: L1) -> None:
    with pytest.raises(ValueError, match="at most 24,575 bytes"):
        l1.deploy_data(bytes(24_576))


def test_transfer_from_a_funded_user_key(l1: L1) -> None:
    user = funded_user(l1, index=0)
    recipient = get_address(dev_account_key(seed=61, index=1))
    before = l1.balance(recipient)
    receipt = l1.transfer(recipient, 12_345, private_key=user)
    assert receipt["from"] == get_address(user)
    assert l1.balance(recipient) == before + 12_345
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert l1.balance(get_address(user)) == ETHER - 12_345 - fee


def test_user_key_calls_a_contract(l1: L1, probe: Compiled) -> None:
    user = funded_user(l1, index=2)
    counter = l1.deploy(probe, 5, private_key=user)
    receipt = l1.send(counter.functions.set(9), "set 9", private_key=user, gas=100_000)
    assert receipt["from"] == get_address(user)
    assert counter.functions.stored().call() == 9
    with pytest.raises(L1Revert, match="thirteen is unlucky"):
        l1.send(counter.functions.set(13), "set 13", private_key=user, gas=100_000)


def test_invalid_unfunded_user_key_is_refused(l1: L1, probe: Compiled) -> None:
    broke = dev_account_key(seed=61, index=3)
    with pytest.raises(L1Error, match="refused by the L1 node") as info:
        l1.transfer(get_address(broke), 1, private_key=broke)
    assert not isinstance(info.value, L1Revert)
    assert get_address(broke) in str(info.value)


def test_bn254_precompiles(l1: L1, probe: Compiled) -> None:
    """0x06 ecAdd, 0x07 ecMul, 0x08 ecPairing agree with py_ecc (the settlement contract needs all three)."""
    call = l1.deploy(probe, 0).functions.precompile
    g1, g2 = BN254.G1, BN254.G2
    assert call("0x" + "00" * 19 + "06", encode_g1(g1) + encode_g1(g1)).call() == encode_g1(BN254.double(g1))
    assert call("0x" + "00" * 19 + "07", encode_g1(g1) + (BN254.r - 1).to_bytes(32, "big")).call() == encode_g1(BN254.neg(g1))
    # e(G1, G2) * e(-G1, G2) == 1, and e(G1, G2)^2 != 1
    pairing = "0x" + "00" * 19 + "08"
    assert call(pairing, encode_g1(g1) + encode_g2(g2) + encode_g1(BN254.neg(g1)) + encode_g2(g2)).call() == (1).to_bytes(32, "big")
    assert call(pairing, (encode_g1(g1) + encode_g2(g2)) * 2).call() == bytes(32)


# ---- the embedded chain's state ----

PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from contracts.chain import L1, get_address, get_dev_key
    from rollup.signing import dev_account_key
    sys.path.insert(0, sys.argv[3])
    from test_l1_chain import compile_probe

    probe = compile_probe()
    l1 = L1.open(Path(sys.argv[1]))
    user = dev_account_key(seed=61, index=9)
    start = {"block": l1.block_number, "timestamp": l1.w3.eth.get_block("latest")["timestamp"]}
    if sys.argv[2] == "first":
        counter = l1.deploy(probe, 41)
        l1.fund(get_address(user), 10**18)
    else:
        counter = l1.w3.eth.contract(address=sys.argv[2], abi=probe.abi)
        start["stored"] = counter.functions.stored().call()
        start["user_balance"] = l1.balance(get_address(user))
        l1.send(counter.functions.set(start["stored"] + 1), "increment", private_key=get_dev_key(1), gas=100_000)
        l1.send(counter.functions.set(start["stored"] + 2), "increment", private_key=user, gas=100_000)
        l1.fund(get_address(dev_account_key(seed=61, index=8)), 777)  # eth-tester signs for its dev account
    l1.save()
    print(json.dumps({**start, "counter": counter.address, "end_block": l1.block_number}))
    """
)


def run_process(state_dir: Path, step: str) -> dict[str, int | str]:
    """One separate Python process that opens the L1 in `state_dir`, sends, saves and exits."""
    done = subprocess.run(
        [sys.executable, "-c", PROCESS_SCRIPT, str(state_dir), step, str(Path(__file__).parent)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_state_persists_across_processes(tmp_path: Path) -> None:
    first = run_process(tmp_path, "first")
    assert first["block"] == 0  # a new chain
    assert (tmp_path / STATE_FILE).is_file()
    second = run_process(tmp_path, str(first["counter"]))
    # the second process sees the first one's contract, balances and blocks
    assert second["stored"] == 41
    assert second["user_balance"] == ETHER
    assert second["block"] == first["end_block"]
    assert second["end_block"] == first["end_block"] + 3  # a dev key, a user key and eth-tester's signer sent
    # and its own transactions are there for a third reader
    l1 = L1.open(tmp_path)
    counter = l1.w3.eth.contract(address=str(first["counter"]), abi=compile_probe().abi)
    assert counter.functions.stored().call() == 43
    assert l1.block_number == second["end_block"]
    assert l1.balance(get_address(dev_account_key(seed=61, index=8))) == 777
    assert l1.w3.eth.get_block("latest")["timestamp"] > int(second["timestamp"])


def test_genesis_is_pinned(tmp_path: Path) -> None:
    """Two new chains share their genesis and dev accounts (so any saved state opens anywhere)."""
    one, two = L1.embedded(), L1.open(tmp_path)
    assert one.w3.eth.get_block(0)["hash"] == two.w3.eth.get_block(0)["hash"]
    assert one.accounts == two.accounts == [get_address(get_dev_key(i)) for i in range(10)]
    assert one.w3.eth.get_block("latest")["gasLimit"] == 30_000_000


def test_save_without_new_blocks_writes_nothing(tmp_path: Path) -> None:
    l1 = L1.open(tmp_path)
    l1.fund(l1.accounts[1], 1)
    l1.save()
    written = (tmp_path / STATE_FILE).stat().st_mtime_ns
    reopened = L1.open(tmp_path)
    reopened.save()
    assert (tmp_path / STATE_FILE).stat().st_mtime_ns == written


def test_invalid_concurrent_save_is_refused(tmp_path: Path) -> None:
    """Two commands opened the same state; the second to save would erase the first's transactions."""
    first, second = L1.open(tmp_path), L1.open(tmp_path)
    first.fund(first.accounts[1], 111)
    second.fund(second.accounts[2], 222)
    first.save()
    with pytest.raises(L1StateError, match="changed by another command"):
        second.save()
    reopened = L1.open(tmp_path)
    assert reopened.balance(reopened.accounts[1]) == first.balance(first.accounts[1])
    assert reopened.block_number == 1


def test_invalid_corrupt_state_file(tmp_path: Path) -> None:
    l1 = L1.open(tmp_path)
    l1.fund(l1.accounts[1], 1)
    l1.save()
    path = tmp_path / STATE_FILE
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(L1StateError, match="corrupt"):
        L1.open(tmp_path)
    other_genesis = bytearray(blob)
    other_genesis[-1] ^= 1  # the body is whole again
    other_genesis[len(STATE_MAGIC)] ^= 1  # its first byte of genesis hash is not ours
    path.write_bytes(bytes(other_genesis))
    with pytest.raises(L1StateError, match="another genesis"):
        L1.open(tmp_path)
    path.write_bytes(b"something else")
    with pytest.raises(L1StateError, match="not an L1 state file"):
        L1.open(tmp_path)


def test_invalid_rpc_url() -> None:
    with pytest.raises(L1Error, match="no JSON-RPC node answers"):
        L1.rpc(f"http://127.0.0.1:{get_free_port()}")


def test_embedded_defaults_of_the_genesis_are_the_embedded_chains():
    """The default genesis binds signatures to the embedded L1 (its chain id) and to the address
    its first deployment gets (the first dev account's CREATE at nonce 0)."""
    from rollup.genesis import EMBEDDED_DEPLOYER_KEY, EMBEDDED_L1_CHAIN_ID, compute_create_address, get_embedded_rollup_address

    l1 = L1.embedded()
    assert l1.chain_id == EMBEDDED_L1_CHAIN_ID
    assert EMBEDDED_DEPLOYER_KEY == get_dev_key(0) and get_address(EMBEDDED_DEPLOYER_KEY) == l1.default_sender
    assert l1.deploy(compile_probe(), 5).address == get_embedded_rollup_address()
    assert l1.deploy(compile_probe(), 5).address == compute_create_address(l1.default_sender, 1)
