"""Verifying a circuit-v3 batch from published data only: proofs, public inputs, signatures, roots.

The published batch (`PublishedTransition`, batch.json) holds the genesis, the tree shape, the
segment size, the previous and new state roots, the segments (each: its signed oracle update or
none, its signed transactions, its root after), the touched accounts before and after with one
multiproof against the previous accounts root, and the markets and globals before and after. The
proofs and the key are snarkjs JSON beside it.

`verify_transition` trusts nothing it is handed:
1. the key: its hash must be the pinned one (the caller's, or the node's keys / the L1
   deployment's record, chosen by the CLI); its public-input count the shape's;
2. the previous state: the published accounts, markets and globals open the previous root (one
   multiproof), which must be the root the caller's chain is at when given;
3. every signature, natively: the oracle key for each oracle section; every L2 signature verified
   over its record (the circuit proves the key is the account's registered one); a withdrawal's
   Ethereum signature recovered to the account's owner (its address in the published state
   before, or its deposit's in this batch), as the contract's `ecrecover` checks it; a key
   registration's to the address its record names (the circuit proves it is the account's);
4. every public input rebuilt (`compute_transition_inputs`): batch number, segment index, the
   chain of roots from the previous root through each segment's published root after, the oracle
   section's words and the hash of the segment's record words (`verifier.pubdata.compute_records_hash`);
   all proofs in one batched pairing check;
5. the aggregate root rebuilt natively: the accounts after on the same multiproof, the markets and
   globals after, must give the last segment's root, which must be the published new root; the
   published accounts must be exactly the accounts the records touch.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Sequence

from pydantic import Field, ValidationError

from verifier.snarkjs import compute_vk_hash
from verifier.keccak import keccak256
from verifier.encoding import (
    InvalidSignature,
    MalformedLeaf,
    compute_genesis_hash,
    decode_account_leaf,
    decode_globals_leaf,
    decode_instrument_leaf,
    recover_signers,
)
from verifier.groth16 import MalformedInput, PreparedVerifyingKey, batch_verify, prepare_verifying_key, verify_proof
from verifier.oracle_section import OracleShape, compute_oracle_section, compute_oracle_words
from verifier.l2auth import check_signers
from verifier.pubdata import RECORD_BY_TYPE, compute_record_words, compute_records_hash
from verifier.slots import get_slot_accounts
from verifier.snarkjs import parse_proof, parse_public_inputs, parse_verifying_key
from verifier.state_tree import (
    R,
    InvalidPath,
    TreeShape,
    compute_account_hash,
    compute_globals_hash,
    compute_markets_hash,
    compute_multiproof_root,
    compute_state_root,
    get_instrument_table,
)
from verifier.wire import Bytes32, Genesis, HexBytes, OracleUpdate, Transaction, WireModel

FORMAT_VERSION = 3
HEADER_WORDS = 4  # batch, segment, root before, root after
RECORDS_HASH_WORDS = 1  # the segment's records, hashed, whatever the slot count (signatures are verified inside the proof or on L1)

REASONS: dict[str, str] = {
    "malformed": "a published file is missing or does not parse",
    "vk_hash_mismatch": "the verifying key is not the pinned one",
    "malformed_key": "the verifying key is not a valid BN254 Groth16 key",
    "shape_mismatch": "the key or a segment does not fit the circuit's shape",
    "malformed_leaf": "a published leaf is not a canonical encoding",
    "malformed_multiproof": "the multiproof is not well-formed",
    "genesis_mismatch": "the globals do not commit to the published genesis",
    "prev_root_mismatch": "the published previous state does not open the previous root",
    "account_set_mismatch": "the published accounts are not exactly those the records touch",
    "bad_signature": "a signature does not verify or recover, is not the account owner's, or the oracle update is not the oracle's",
    "proof_count_mismatch": "not one proof per segment",
    "proof_malformed": "a proof is not well-formed (points off the curve or subgroup, bad JSON)",
    "proof_invalid": "the proofs do not verify for the public inputs rebuilt from the batch",
    "public_input_not_in_field": "a published public input is not below the field modulus",
    "public_input_mismatch": "a published public file differs from the rebuilt inputs",
    "new_root_mismatch": "the published state after does not give the proven root",
    "deposit_not_queued": "the batch's deposits are not the L1 deposit queue's entries",
}

QueueHash = Callable[[int], bytes]  # the L1 queue's rolling hash after n deposits (the contract's deposit_hashes(n))


class VerificationError(Exception):
    """The batch does not verify; `reason` is a stable code (`REASONS`), the message says why."""

    def __init__(self, reason: str, message: str):
        # reason codes are an interface: only the listed ones
        if reason not in REASONS:
            raise ValueError(f"unknown verification reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


# --- The published format --------------------------------------------------------------------------

FieldHex = Bytes32  # a field element as 0x + 64 hex digits


class PublishedTransitionSegment(WireModel):
    oracle_update: OracleUpdate | None = None
    transactions: list[Transaction]
    root_after: FieldHex


class PublishedTransition(WireModel):
    version: Annotated[int, Field(ge=FORMAT_VERSION, le=FORMAT_VERSION)] = FORMAT_VERSION
    genesis: Genesis
    tree_depth: Annotated[int, Field(ge=1, le=16)]
    tree_arity: Annotated[int, Field(ge=2, le=16)]
    n_slots: Annotated[int, Field(ge=1, le=4096)]
    batch: Annotated[int, Field(ge=1)]
    prev_root: FieldHex
    new_root: FieldHex
    vk_hash: Bytes32
    segments: Annotated[list[PublishedTransitionSegment], Field(min_length=1)]
    accounts_before: dict[str, HexBytes]  # account id -> canonical leaf bytes, "0x" if absent
    accounts_after: dict[str, HexBytes]
    multiproof: list[FieldHex]
    instruments_before: list[HexBytes]  # the genesis table's order (sorted by id)
    instruments_after: list[HexBytes]
    globals_before: HexBytes
    globals_after: HexBytes


def to_field_hex(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def from_field_hex(text: str, what: str) -> int:
    value = int(text, 16)
    # a field element, not an alias of one
    if value >= R:
        raise VerificationError("malformed", f"{what} is not below the field modulus")
    return value


@dataclass
class PublishedFiles:
    batch: PublishedTransition
    vk: dict[str, Any]
    proofs: list[Any]
    public: list[Any | None]


def write_transition(directory: Path, files: PublishedFiles) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "proofs").mkdir(exist_ok=True)
    (directory / "batch.json").write_text(files.batch.model_dump_json(indent=1))
    (directory / "verification_key.json").write_text(json.dumps(files.vk, indent=1))
    for index, (proof, public) in enumerate(zip(files.proofs, files.public, strict=True)):
        (directory / "proofs" / f"segment-{index}.json").write_text(json.dumps(proof, indent=1))
        if public is not None:
            (directory / "proofs" / f"public-{index}.json").write_text(json.dumps(public))


def read_transition(directory: Path) -> PublishedFiles:
    """Read a published directory; anything missing or unparsable is reason `malformed`."""
    try:
        batch = PublishedTransition.model_validate_json((directory / "batch.json").read_text())
        vk = json.loads((directory / "verification_key.json").read_text())
        proofs, public = [], []
        for index in range(len(batch.segments)):
            proofs.append(json.loads((directory / "proofs" / f"segment-{index}.json").read_text()))
            path = directory / "proofs" / f"public-{index}.json"
            public.append(json.loads(path.read_text()) if path.exists() else None)
    except (OSError, ValueError, ValidationError) as exc:
        raise VerificationError("malformed", f"{directory}: {str(exc).splitlines()[0]}") from None
    return PublishedFiles(batch, vk, proofs, public)


# --- The checks --------------------------------------------------------------------------------------


@dataclass
class TransitionReport:
    batch: int
    prev_root: str
    new_root: str
    vk_hash: str
    n_segments: int
    n_transactions: int
    n_slots: int
    public_data_bytes: int  # the records: what data availability costs
    deposits_checked: bool  # against the L1 deposit queue (else deposits are unauthenticated)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decode_accounts(leaves: Mapping[str, str], table: Sequence[int], what: str) -> dict[int, int]:
    out = {}
    for key, data in leaves.items():
        # account ids as decimal strings
        if not key.isdigit():
            raise VerificationError("malformed", f"{what}: account id {key!r} is not a decimal integer")
        raw = bytes.fromhex(data[2:])
        try:
            leaf = decode_account_leaf(raw) if raw else None
            out[int(key)] = compute_account_hash(leaf, table)
        except (MalformedLeaf, ValueError) as exc:
            raise VerificationError("malformed_leaf", f"{what}: account {key}: {exc}") from None
    return out


def _state_root(accounts: Mapping[int, int], multiproof: Sequence[int], instruments: Sequence[str], globals_leaf: str,
                shape: TreeShape, table: Sequence[int], genesis: Genesis, what: str) -> int:
    try:
        decoded = [decode_instrument_leaf(bytes.fromhex(x[2:])) for x in instruments]
        g = decode_globals_leaf(bytes.fromhex(globals_leaf[2:]))
        markets = compute_markets_hash({leaf.id: leaf for leaf in decoded}, table, genesis.risk.n_scenarios)
    except (MalformedLeaf, ValueError) as exc:
        raise VerificationError("malformed_leaf", f"{what}: {exc}") from None
    # the markets are the genesis table, in its order
    if [leaf.id for leaf in decoded] != list(table):
        raise VerificationError("malformed_leaf", f"{what}: instruments {[leaf.id for leaf in decoded]}, the table {list(table)}")
    # the state commits to this genesis
    if g.genesis_hash != compute_genesis_hash(genesis):
        raise VerificationError("genesis_mismatch", f"{what}: the globals commit to another genesis")
    try:
        accounts_root = compute_multiproof_root(accounts, multiproof, shape)
    except InvalidPath as exc:
        raise VerificationError("malformed_multiproof", f"{what}: {exc}") from None
    return compute_state_root(accounts_root, markets, compute_globals_hash(g))


def get_record_accounts(batch: PublishedTransition) -> set[int]:
    accounts: set[int] = set()
    for segment in batch.segments:
        for tx in segment.transactions:
            accounts.update(i for i in get_slot_accounts(tx) if i is not None)
    return accounts


def get_owners(batch: PublishedTransition) -> dict[int, str]:
    """Each published account's address before the batch (an address never changes); accounts
    the batch creates get theirs from `check_signatures` as it meets their deposits."""
    owners = {}
    for key, data in batch.accounts_before.items():
        raw = bytes.fromhex(data[2:])
        if key.isdigit() and raw:
            try:
                owners[int(key)] = decode_account_leaf(raw).address
            except (MalformedLeaf, ValueError) as exc:
                raise VerificationError("malformed_leaf", f"accounts_before: account {key}: {exc}") from None
    return owners


def check_signatures(tx: Any, domain: Any, owners: dict[int, str]) -> None:
    """One slot's signatures, as the proof and the contract check them together (ValueError or
    InvalidSignature says why): L2 signatures verify over the record; a withdrawal is signed by
    the account's owner; a registration by the address its record names."""
    if tx.type == "deposit":
        owners.setdefault(tx.account, tx.address)
        return
    signers = check_signers(tx, domain)
    if tx.type == "withdraw" and signers[0] != owners.get(tx.account):
        raise ValueError(f"withdrawal from account {tx.account} signed by {signers[0]}, the account's owner is {owners.get(tx.account)}")
    if tx.type == "register_key" and signers[0] != tx.address:
        raise ValueError(f"key registration for account {tx.account} signed by {signers[0]}, not by {tx.address}")


def compute_transition_inputs(batch: PublishedTransition, prev_root: int) -> list[list[int]]:
    """Every segment's public inputs from the published data (signatures checked here)."""
    genesis = batch.genesis
    table = get_instrument_table(s.id for s in genesis.instruments)
    oracle_shape = OracleShape(table, genesis.risk.n_scenarios)
    inputs = []
    root = prev_root
    owners = get_owners(batch)
    for index, segment in enumerate(batch.segments):
        where = f"segment {index}"
        # a segment holds at most n_slots slots, and oracle updates only in its oracle section
        if len(segment.transactions) > batch.n_slots:
            raise VerificationError("shape_mismatch", f"{where} holds {len(segment.transactions)} transactions, a segment {batch.n_slots}")
        if any(tx.type not in RECORD_BY_TYPE for tx in segment.transactions):
            raise VerificationError("shape_mismatch", f"{where}: an oracle update is a segment's oracle section, not a slot")
        if segment.oracle_update is not None:
            try:
                (signer,) = recover_signers(segment.oracle_update, genesis.signing_domain)
            except InvalidSignature as exc:
                raise VerificationError("bad_signature", f"{where}: oracle update: {exc}") from None
            # the oracle key fixed at genesis signs prices
            if signer != genesis.oracle_address:
                raise VerificationError("bad_signature", f"{where}: oracle update signed by {signer}, the oracle is {genesis.oracle_address}")
        try:
            oracle_words = compute_oracle_words(compute_oracle_section(segment.oracle_update, oracle_shape), oracle_shape)
        except ValueError as exc:
            raise VerificationError("shape_mismatch", f"{where}: oracle update: {exc}") from None
        root_after = from_field_hex(segment.root_after, f"{where}'s root after")
        records = []
        for k in range(batch.n_slots):
            if k < len(segment.transactions):
                tx = segment.transactions[k]
                try:
                    check_signatures(tx, genesis.signing_domain, owners)
                except (InvalidSignature, ValueError) as exc:
                    raise VerificationError("bad_signature", f"{where}, slot {k}: {exc}") from None
                records.append(compute_record_words(tx))
            else:
                records.append(compute_record_words(None))
        inputs.append([batch.batch, index, root, root_after, *oracle_words, compute_records_hash(records)])
        root = root_after
    return inputs


def check_key(vk_json: Mapping[str, Any], batch: PublishedTransition, pinned_vk_hash: bytes | None) -> PreparedVerifyingKey:
    vk_hash = compute_vk_hash(vk_json)
    # the proofs are for the key the batch names, and the key is the pinned one
    if "0x" + vk_hash.hex() != batch.vk_hash:
        raise VerificationError("vk_hash_mismatch", f"verification_key.json hashes to 0x{vk_hash.hex()}, the batch names {batch.vk_hash}")
    if pinned_vk_hash is not None and vk_hash != pinned_vk_hash:
        raise VerificationError("vk_hash_mismatch", f"verification_key.json hashes to 0x{vk_hash.hex()}, pinned 0x{pinned_vk_hash.hex()}")
    try:
        pvk = prepare_verifying_key(parse_verifying_key(dict(vk_json)))
    except MalformedInput as exc:
        raise VerificationError("malformed_key", str(exc)) from None
    table = get_instrument_table(s.id for s in batch.genesis.instruments)
    expected = HEADER_WORDS + OracleShape(table, batch.genesis.risk.n_scenarios).n_words + RECORDS_HASH_WORDS
    # the key is the transition circuit's of this shape
    if pvk.vk.n_public != expected:
        raise VerificationError("shape_mismatch", f"the key has {pvk.vk.n_public} public inputs, a {batch.n_slots}-slot segment {expected}")
    return pvk


def check_proofs(pvk: PreparedVerifyingKey, proof_objects: Sequence[Any], inputs: Sequence[Sequence[int]], rng: Any) -> None:
    """All proofs in one batched pairing check; a failure names the first segment failing alone."""
    # one proof per segment
    if len(proof_objects) != len(inputs):
        raise VerificationError("proof_count_mismatch", f"{len(inputs)} segments but {len(proof_objects)} proofs")
    items = []
    for index, (obj, x) in enumerate(zip(proof_objects, inputs)):
        try:
            items.append((parse_proof(obj), x))
        except MalformedInput as exc:
            raise VerificationError("proof_malformed", f"segment {index}: {exc}") from None
    try:
        valid = batch_verify(pvk, items, rng or secrets.SystemRandom())
    except MalformedInput as exc:
        raise VerificationError("proof_malformed", str(exc)) from None
    if not valid:
        failing = next((i for i, (p, x) in enumerate(items) if not verify_proof(pvk, p, x)), None)
        where = f"segment {failing}'s proof" if failing is not None else "the batch of proofs"
        raise VerificationError("proof_invalid", f"{where} does not verify for the public inputs rebuilt from batch.json")


def check_published_public(public_objects: Sequence[Any], inputs: Sequence[Sequence[int]]) -> None:
    """Published public files are a convenience: when present they equal the rebuilt inputs."""
    for index, (obj, rebuilt) in enumerate(zip(public_objects, inputs, strict=True)):
        if obj is None:
            continue
        try:
            values = parse_public_inputs(obj)
        except MalformedInput as exc:
            raise VerificationError("public_input_mismatch", f"public-{index}.json: {exc}") from None
        # x and x + r are one field element: never reduced silently
        if any(v >= R for v in values):
            raise VerificationError("public_input_not_in_field", f"public-{index}.json: an input is not below r")
        if values != list(rebuilt):
            raise VerificationError("public_input_mismatch", f"public-{index}.json differs from the inputs rebuilt from batch.json")


def compute_queue_hash(previous: bytes, deposit: Any) -> bytes:
    """The L1 queue's rolling hash after `deposit`: keccak256(previous, account, sender, amount) as
    32-byte words (the contract's)."""
    address = bytes(12) + bytes.fromhex(deposit.address[2:])
    return keccak256(previous + deposit.account.to_bytes(32, "big") + address + deposit.amount.to_bytes(32, "big"))


def check_deposits_against_queue(batch: PublishedTransition, get_queue_hash: QueueHash) -> None:
    """The batch's deposits are the L1 queue's entries from where it stood: a deposit carries no
    signature (the queue entry is its authorisation), so without this check anyone could credit
    themselves collateral off chain (the contract does the same on settlement). The queue position
    is the globals' deposit count before the batch (opened against the previous root; the circuit
    consumes deposits from it in order), never the published deposit ids, which no proof covers."""
    deposits = [tx for s in batch.segments for tx in s.transactions if tx.type == "deposit"]
    if not deposits:
        return
    first = decode_globals_leaf(bytes.fromhex(batch.globals_before[2:])).deposit_count
    # the ids the transactions name are the queue positions they consume
    for i, tx in enumerate(deposits):
        if tx.deposit_id != first + i:
            raise VerificationError("deposit_not_queued", f"deposit {i} of the batch names queue entry {tx.deposit_id}, the queue stood at {first + i}")
    queue_hash = get_queue_hash(first)
    for tx in deposits:
        queue_hash = compute_queue_hash(queue_hash, tx)
    # the queue holds these entries, in this order (beyond its end the L1 has no hash)
    if queue_hash != get_queue_hash(first + len(deposits)):
        raise VerificationError("deposit_not_queued", f"deposits {first}..{first + len(deposits) - 1} are not the L1 queue's entries")


def verify_transition(
    files: PublishedFiles,
    pinned_vk_hash: bytes | None,
    expected_prev_root: int | None = None,
    rng: Any = None,
    deposit_queue: QueueHash | None = None,
) -> TransitionReport:
    """Verify a published v3 batch (raises `VerificationError`). `pinned_vk_hash`: the key the
    caller trusts (None trusts the published key: the CLI asks for an explicit flag);
    `expected_prev_root`: the root the caller's chain is at; `deposit_queue`: the L1 queue's
    rolling hashes, which the batch's deposits must match (without it deposits are not
    authenticated: say so)."""
    import time

    timings: dict[str, float] = {}
    started = time.perf_counter()
    batch = files.batch
    genesis = batch.genesis
    pvk = check_key(files.vk, batch, pinned_vk_hash)
    try:
        tree = TreeShape(batch.tree_depth, batch.tree_arity)
    except ValueError as exc:
        raise VerificationError("shape_mismatch", str(exc)) from None
    table = get_instrument_table(s.id for s in genesis.instruments)
    prev_root = from_field_hex(batch.prev_root, "prev_root")
    # the batch extends the chain the caller knows
    if expected_prev_root is not None and prev_root != expected_prev_root:
        raise VerificationError("prev_root_mismatch", f"the batch starts from {batch.prev_root}, the chain is at {to_field_hex(expected_prev_root)}")
    touched = get_record_accounts(batch)
    # the published accounts are exactly the ones the records touch, before and after
    for what, leaves in (("accounts_before", batch.accounts_before), ("accounts_after", batch.accounts_after)):
        if {int(k) for k in leaves if k.isdigit()} != touched or len(leaves) != len(touched):
            raise VerificationError("account_set_mismatch", f"{what} holds {sorted(leaves, key=len)[:8]}..., the records touch {sorted(touched)[:8]}...")
    multiproof = [from_field_hex(x, "a multiproof node") for x in batch.multiproof]
    before = _decode_accounts(batch.accounts_before, table, "accounts_before")
    opened = _state_root(before, multiproof, batch.instruments_before, batch.globals_before, tree, table, genesis, "the state before")
    # the published previous state is the one the previous root commits to
    if opened != prev_root:
        raise VerificationError("prev_root_mismatch", f"the published state before opens {to_field_hex(opened)}, prev_root is {batch.prev_root}")
    timings["previous_state"] = round(time.perf_counter() - started, 4)
    if deposit_queue is not None:
        check_deposits_against_queue(batch, deposit_queue)
    inputs = compute_transition_inputs(batch, prev_root)
    timings["public_inputs"] = round(time.perf_counter() - started - sum(timings.values()), 4)
    check_proofs(pvk, files.proofs, inputs, rng)
    check_published_public(files.public, inputs)
    timings["proofs"] = round(time.perf_counter() - started - sum(timings.values()), 4)
    after = _decode_accounts(batch.accounts_after, table, "accounts_after")
    rebuilt = _state_root(after, multiproof, batch.instruments_after, batch.globals_after, tree, table, genesis, "the state after")
    proven = inputs[-1][3]
    # the state published after is the one the proofs end in, and the batch's new root
    if rebuilt != proven or to_field_hex(proven) != batch.new_root:
        raise VerificationError(
            "new_root_mismatch", f"the published state after gives {to_field_hex(rebuilt)}, the proofs end in {to_field_hex(proven)}, the batch claims {batch.new_root}"
        )
    timings["new_root"] = round(time.perf_counter() - started - sum(timings.values()), 4)
    n_tx = sum(len(s.transactions) + (s.oracle_update is not None) for s in batch.segments)
    return TransitionReport(
        batch.batch, batch.prev_root, batch.new_root, batch.vk_hash, len(batch.segments), n_tx, batch.n_slots,
        sum(RECORD_BY_TYPE[tx.type].size for s in batch.segments for tx in s.transactions), deposit_queue is not None, timings,
    )
