"""An L1 to settle on: py-evm in process through eth-tester by default, or any JSON-RPC chain.

Three ways to connect, one API:
- `L1.embedded()`: a fresh in-memory py-evm chain (Prague, 30M block gas), for tests.
- `L1.open(state_dir)`: the same chain kept in a node's home. py-evm keeps the whole chain (headers,
  blocks, receipts, state trie) in one key/value database; `save()` writes that database to one file
  (temp file + rename) and `open` rebuilds the chain object on it from its canonical head. The
  genesis is pinned, so the dev accounts (eth-tester's keys 1..10) and the chain id are the same on
  every machine; block numbers and timestamps continue across processes.
- `L1.rpc(url, private_key)`: any JSON-RPC node (anvil, geth, hardhat, ...). With a key, transactions
  are signed here (eth-account) and sent raw; without, the node's unlocked accounts send.

Gas is always given explicitly (estimation re-runs the call, pairings included, about ten times).
A failed transaction raises `L1Revert` with the revert reason, read by replaying it as a call on
the state before its block.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils.exceptions import ValidationError as EVMValidationError
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.providers.eth_tester import EthereumTesterProvider

from contracts.build import Compiled
from rollup.signing import PrivateKey, get_address

BLOCK_GAS_LIMIT = 30_000_000  # mainnet's order of magnitude: a batch that needs more does not fit a block
DEFAULT_GAS = BLOCK_GAS_LIMIT - 1_000_000
PRIORITY_FEE = 10**9  # 1 gwei tip; the fee cap is twice the base fee plus this
RECEIPT_TIMEOUT = 120.0  # seconds to wait for a JSON-RPC chain to mine a transaction
RPC_TIMEOUT = 60.0  # seconds for one JSON-RPC request

# The embedded chain's genesis is fixed so that every node home holds the same chain: eth-tester
# would otherwise stamp genesis with the current time (a different genesis hash per run).
GENESIS_TIMESTAMP = 1_735_689_600  # 2025-01-01T00:00:00Z; later blocks carry the wall-clock time
GENESIS_PARAMS = PyEVMBackend.generate_genesis_params(
    overrides={"gas_limit": BLOCK_GAS_LIMIT, "timestamp": GENESIS_TIMESTAMP}
)
DEV_ACCOUNTS = 10  # eth-tester's funded accounts: private keys 1..10, 1,000,000 ether each

STATE_FILE = "l1-chain.bin"
LOCK_FILE = "l1-chain.lock"
STATE_MAGIC = b"rollup-l1-pyevm-db/1\n"
_HEADER = struct.Struct(">32s32s32s")  # genesis hash, head block hash, sha256 of the body
_RECORD = struct.Struct(">II")  # key length, value length


class L1Error(RuntimeError):
    """Something on the L1 failed: a node that rejects a transaction, a state file that cannot be used."""


class L1Revert(L1Error):
    """An L1 transaction reverted; `reason` is the contract's message ("" if it gave none)."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"{what} reverted: {reason or 'no reason given (a failed precompile or an invalid jump)'}")
        self.what = what
        self.reason = reason


class L1StateError(L1Error):
    """The embedded chain's state file is unreadable, belongs to another chain, or changed under us."""


@dataclass
class L1:
    w3: Web3
    tester: EthereumTester | None = None  # the embedded chain, None for JSON-RPC
    default_key: PrivateKey | None = None  # signs when no sender is named (JSON-RPC with a key)
    state_dir: Path | None = None  # where `save()` keeps the embedded chain
    _saved_head: bytes | None = field(default=None, repr=False)  # head in the state file when read

    # ---- connecting ----

    @classmethod
    def embedded(cls) -> "L1":
        """A fresh in-memory chain (nothing is kept: `save()` does nothing)."""
        tester = EthereumTester(PyEVMBackend(genesis_parameters=GENESIS_PARAMS))
        return cls(Web3(EthereumTesterProvider(tester)), tester=tester)

    @classmethod
    def open(cls, state_dir: Path) -> "L1":
        """The embedded chain kept in `state_dir`: loaded if saved there before, else a new one.
        Call `save()` after sending transactions, or they are lost when the process ends."""
        l1 = cls.embedded()
        l1.state_dir = Path(state_dir)
        path = l1.state_dir / STATE_FILE
        if path.exists():
            l1._saved_head = _load_chain(l1.tester.backend, path.read_bytes(), path)
        return l1

    @classmethod
    def rpc(cls, url: str, private_key: PrivateKey | None = None, timeout: float = RPC_TIMEOUT) -> "L1":
        """Any JSON-RPC chain. With `private_key`, transactions are signed here and sent raw (the
        key's account pays); without it, the node's first unlocked account sends."""
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
        # the node answers (a wrong URL fails here, not in the middle of a settlement)
        if not w3.is_connected():
            raise L1Error(f"no JSON-RPC node answers at {url}")
        return cls(w3, default_key=private_key)

    def save(self) -> None:
        """Write the embedded chain to `state_dir` atomically (temp file, fsync, rename). Nothing to
        do for a JSON-RPC chain (the node keeps its state) or an in-memory one. Refuses to overwrite
        a state that another process saved since this one was read (it would be lost). Mined blocks
        are kept; eth-tester's filters and snapshots, and unmined transactions (none while it
        auto-mines, its default), are not."""
        if self.tester is None or self.state_dir is None:
            return
        # no block since the chain was read or last saved: the file already holds it
        if self._saved_head == self.tester.backend.chain.get_canonical_head().hash:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / STATE_FILE
        with open(self.state_dir / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            on_disk = _read_head(path)
            # nobody else saved since we read the file (else their transactions would vanish)
            if on_disk != self._saved_head:
                raise L1StateError(
                    f"the L1 state in {self.state_dir} was changed by another command while this one ran; "
                    "its transactions were not saved: run it again"
                )
            blob, head = _dump_chain(self.tester.backend)
            tmp = path.with_name(f"{STATE_FILE}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as out:
                    out.write(blob)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)  # readers see the old file or the new one, never half of one
            finally:
                tmp.unlink(missing_ok=True)
            self._saved_head = head

    # ---- reading ----

    @property
    def is_embedded(self) -> bool:
        return self.tester is not None

    @property
    def accounts(self) -> list[str]:
        """Accounts the node signs for: eth-tester's funded dev accounts, or the node's unlocked ones."""
        return list(self.w3.eth.accounts)

    @property
    def default_sender(self) -> str:
        """The account that sends when none is named: the default key's, else the node's first."""
        if self.default_key is not None:
            return get_address(self.default_key)
        accounts = self.accounts
        # the node can sign for someone (a public node has no unlocked account)
        if not accounts:
            raise L1Error("the L1 node has no unlocked account to send from: give a private key")
        return accounts[0]

    @functools.cached_property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    @property
    def block_number(self) -> int:
        return self.w3.eth.block_number

    def balance(self, address: str) -> int:
        """Wei held by `address` at the latest block."""
        return self.w3.eth.get_balance(Web3.to_checksum_address(address))

    # ---- sending ----

    def deploy(
        self,
        compiled: Compiled,
        *args: Any,
        sender: str | None = None,
        gas: int = DEFAULT_GAS,
        private_key: PrivateKey | None = None,
    ) -> Contract:
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        receipt = self.send(factory.constructor(*args), f"deploy {compiled.name}", sender=sender, gas=gas, private_key=private_key)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=compiled.abi)

    def deploy_data(self, blob: bytes, sender: str | None = None, private_key: PrivateKey | None = None) -> str:
        """Store `blob` as the code of a new contract (readable with `slice(addr.code, 1, n)`;
        a leading STOP byte makes it uncallable). Cheaper to read than storage, for verifying keys."""
        code = b"\x00" + blob
        # the code fits (EIP-170 caps deployed code at 24,576 bytes)
        if len(code) > 24_576:
            raise ValueError(f"a data contract holds at most 24,575 bytes, got {len(blob)}")
        # init code: PUSH2 len, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN, then the code
        init = b"\x61" + len(code).to_bytes(2, "big") + bytes.fromhex("80600c6000396000f3") + code
        # per byte: 200 to store it, 16 as calldata, and the init code's word costs
        tx = {"data": Web3.to_hex(init), "value": 0, "gas": 220 * len(code) + 100_000}
        return self.transact(tx, "store data contract", sender, private_key)["contractAddress"]

    def send(
        self,
        call: Any,
        what: str,
        sender: str | None = None,
        gas: int = DEFAULT_GAS,
        value: int = 0,
        private_key: PrivateKey | None = None,
    ) -> Any:
        """Send a contract call or constructor (web3's `contract.functions.f(...)`,
        `factory.constructor(...)`) as a transaction with explicit gas; raise L1Revert."""
        fields = {"from": self._get_sender(sender, private_key), "gas": gas, "value": value, "chainId": self.chain_id, **self._get_fees()}
        tx = call.build_transaction(fields)  # encodes the call; every other field is given, so it asks the node nothing
        return self.transact({k: tx[k] for k in ("to", "data", *fields) if k in tx and k != "from"}, what, sender, private_key)

    def transfer(self, to: str, wei: int, sender: str | None = None, private_key: PrivateKey | None = None) -> Any:
        """Send `wei` to `to` (21,000 gas: `to` must not be a contract that runs code on receipt)."""
        tx = {"to": Web3.to_checksum_address(to), "value": wei, "gas": 21_000}
        return self.transact(tx, f"transfer {wei} wei to {to}", sender, private_key)

    def fund(self, address: str, wei: int) -> Any:
        """Give `address` `wei` from the default sender (a funded dev account on the embedded chain)."""
        return self.transfer(address, wei)

    def transact(self, tx: dict[str, Any], what: str, sender: str | None = None, private_key: PrivateKey | None = None) -> Any:
        """Send `tx` (`to`, `data`, `value`, `gas`, optionally the fees; no `to` creates a contract)
        and wait for its receipt. Signed here with `private_key` (or the L1's default key when no
        sender is named), else by the node for `sender` (default: its first account). Raises
        L1Revert on status 0, L1Error if the node refuses it."""
        key = private_key or (self.default_key if sender is None else None)
        fees = {} if "maxFeePerGas" in tx else self._get_fees()
        tx = {**tx, **fees, "from": self._get_sender(sender, key), "chainId": self.chain_id}
        try:
            if key is not None:
                tx["nonce"] = self.w3.eth.get_transaction_count(tx["from"], "pending")
                tx_hash = self.w3.eth.send_raw_transaction(Account.sign_transaction(tx, key).raw_transaction)
            else:
                tx_hash = self.w3.eth.send_transaction(tx)
        except (ContractLogicError, TransactionFailed) as exc:  # some nodes refuse a reverting transaction outright
            raise L1Revert(what, _get_reason(exc)) from None
        except (Web3Exception, TesterValidationError, EVMValidationError) as exc:  # refused: no funds, a bad nonce, an unknown sender
            raise L1Error(f"{what} from {tx['from']} was refused by the L1 node: {_get_reason(exc)}") from None
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        except TimeExhausted:
            raise L1Error(f"{what}: transaction {tx_hash.hex()} not mined after {RECEIPT_TIMEOUT:.0f} s") from None
        if receipt["status"] != 1 and receipt["gasUsed"] == tx["gas"]:
            raise L1Revert(what, f"out of gas or an invalid instruction (it used all the {tx['gas']:,} gas it was given)")
        if receipt["status"] != 1:
            raise L1Revert(what, self._replay_reason(tx, receipt["blockNumber"]))
        return receipt

    # ---- helpers ----

    def _get_sender(self, sender: str | None, private_key: PrivateKey | None) -> str:
        if private_key is not None:
            return get_address(private_key)
        return Web3.to_checksum_address(sender) if sender else self.default_sender

    def _get_fees(self) -> dict[str, int]:
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
        return {"maxFeePerGas": 2 * base_fee + PRIORITY_FEE, "maxPriorityFeePerGas": PRIORITY_FEE}

    def _replay_reason(self, tx: dict[str, Any], block_number: int) -> str:
        """The revert reason of a mined failed transaction: the same call on the state before its
        block (exact when it was the block's only transaction, as with auto-mining nodes)."""
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=max(block_number - 1, 0))
        except Exception as exc:  # any failure of the replay is the reason we want to show
            return _get_reason(exc)
        return ""


def get_dev_key(index: int) -> PrivateKey:
    """Private key of the embedded chain's funded dev account `index` (eth-tester's keys are 1..10)."""
    # the index names one of the dev accounts
    if not 0 <= index < DEV_ACCOUNTS:
        raise ValueError(f"the embedded L1 has dev accounts 0..{DEV_ACCOUNTS - 1}, not {index}")
    return (index + 1).to_bytes(32, "big")


def _get_reason(exc: Exception) -> str:
    """The node's or the contract's words, without web3's wrapping."""
    response = getattr(exc, "rpc_response", None)
    error = response.get("error") if isinstance(response, dict) else None
    message = error.get("message") if isinstance(error, dict) else getattr(exc, "message", None)
    text = message if isinstance(message, str) else (str(exc.args[0]) if exc.args else str(exc))
    text = text.removeprefix("execution reverted: ").removeprefix("execution reverted").strip(" :'\"")
    # eth-tester renders an empty revert's data as the bytes literal b''
    return "" if text in ("b", "b''", 'b""') else text


# ---- the embedded chain's state file ----
# File: STATE_MAGIC, then genesis hash, head block hash and sha256 of the body, then the body: py-evm's
# key/value database as (key length, value length, key, value) records. The database holds every
# block, receipt and state-trie node; the pending block is rebuilt on the head when loading.


def _get_db(backend: PyEVMBackend) -> dict[bytes, bytes]:
    db = backend.chain.chaindb.db
    # eth-tester's chain lives in an AtomicDB over a MemoryDB (py-evm's default backend)
    if not isinstance(db, AtomicDB) or not isinstance(db.wrapped_db, MemoryDB):
        raise L1StateError(f"cannot save a py-evm chain kept in {type(db).__name__}")
    return db.wrapped_db.kv_store


def _get_genesis_hash(backend: PyEVMBackend) -> bytes:
    return backend.chain.chaindb.get_canonical_block_hash(0)


def _dump_chain(backend: PyEVMBackend) -> tuple[bytes, bytes]:
    """The state file's bytes and the head block hash they hold."""
    kv = _get_db(backend)
    body = b"".join(_RECORD.pack(len(k), len(v)) + k + v for k, v in kv.items())
    head = backend.chain.get_canonical_head().hash
    header = _HEADER.pack(_get_genesis_hash(backend), head, hashlib.sha256(body).digest())
    return STATE_MAGIC + header + body, head


def _read_head(path: Path) -> bytes | None:
    """Head block hash recorded in a state file (None if there is no file)."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(STATE_MAGIC) + _HEADER.size)
    except FileNotFoundError:
        return None
    return start[len(STATE_MAGIC) + 32 : len(STATE_MAGIC) + 64]


def _load_chain(backend: PyEVMBackend, blob: bytes, path: Path) -> bytes:
    """Put the chain saved in `blob` under `backend` (a fresh one on the pinned genesis); return
    the head block hash."""
    # the file is ours
    if not blob.startswith(STATE_MAGIC):
        raise L1StateError(f"{path} is not an L1 state file of this rollup")
    genesis, head, digest = _HEADER.unpack_from(blob, len(STATE_MAGIC))
    body = memoryview(blob)[len(STATE_MAGIC) + _HEADER.size :]
    # the file is whole (a rename never leaves half a file, a disk may)
    if hashlib.sha256(body).digest() != digest:
        raise L1StateError(f"{path} is corrupt (checksum mismatch); remove it to start a new L1 chain")
    # the chain starts from the pinned genesis (else its accounts and history are another chain's)
    if genesis != _get_genesis_hash(backend):
        raise L1StateError(f"{path} holds a chain with another genesis; remove it to start a new L1 chain")
    kv = _parse_records(body)
    chain = type(backend.chain)(AtomicDB(MemoryDB(kv)))  # the pending block is built on the saved head
    # the database's canonical head is the one the header names
    if chain.get_canonical_head().hash != head:
        raise L1StateError(f"{path} is inconsistent (its head block is not the database's); remove it")
    backend.chain = chain
    return head


def _parse_records(body: memoryview) -> dict[bytes, bytes]:
    kv: dict[bytes, bytes] = {}
    offset = 0
    while offset < len(body):
        key_len, value_len = _RECORD.unpack_from(body, offset)
        offset += _RECORD.size
        kv[bytes(body[offset : offset + key_len])] = bytes(body[offset + key_len : offset + key_len + value_len])
        offset += key_len + value_len
    return kv
