"""Verification of a published batch: the trusted core's answer to "is this state root right?".

`verify_published_batch(published)` takes only published data (verifier/published.py) and either
returns a `VerificationReport` or raises `VerificationError(reason, message)` with a stable reason
code. Nothing the prover hands over is trusted: public inputs, segment diffs, roots and the
commitment are all recomputed. The checks, in order (the first failure is the reason):

1. format: the key's hash is the one the batch names (and the one the caller pins, if any), its
   input count is the segment circuit's for `n_slots`; one receipt per transaction; segments
   numbered 0..n-1 that cover exactly the accepted transactions in batch order, full but the last;
   one leaf step per transaction.
2. before leaves: every key a step touches, every genesis instrument and the globals leaf are
   published, and the multiproof proves them against the previous root; the globals leaf commits
   to this genesis (so the genesis, the rules' parameters and the oracle key are the chain's).
3. chaining: inside a segment every step starts where the previous step left each leaf, across
   segments every segment starts where the previous one left it, the first from the before leaves.
4. transactions, natively (the circuit does not see these): every signature recovers to the
   account's registered address (from the step's before leaf, so a deposit earlier in the batch
   counts), the oracle's to the genesis oracle key; nonces are the accounts' next ones and go up
   by one, deposits consume the queue in order (unsigned: with an L1 to ask, `deposit_queue`, they
   must be its queue's entries), each oracle update follows the last one applied; a step holds exactly the
   leaves of its slot's windows (plus, for an oracle update, the instruments it lists); the
   instrument leaves an oracle update writes are rebuilt with the oracle rules; any other step
   changes an instrument leaf's open interest only; the globals leaf keeps its genesis hash;
   receipts carry each transaction's hash and type.
5. public inputs: rebuilt per segment from the batch number, the segment index, the transactions
   and the leaf steps (`verifier.segment.compute_segment_public`, which derives every position's
   oracle view from the chained instrument leaves).
6. proofs: all segments' Groth16 proofs in one batch verification (one final exponentiation);
   on failure each is checked alone to name the segment.
7. published public files, where present, must equal the rebuilt inputs (an input >= r is
   refused, never reduced).
8. new root: the same multiproof with the "after" leaves gives the claimed new root.
9. commitment: each segment's root over its folded diff, and the batch commitment over them.

Imports nothing from `rollup` or `prover`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from verifier.commitments import (
    BrokenChain,
    LeafChange,
    compute_batch_commitment,
    compute_segment_root,
    compute_vk_hash,
    fold_leaf_changes,
    fold_segment_diffs,
)
from verifier.curve import BN254
from verifier.encoding import (
    EMPTY_LEAF_BYTES,
    GLOBALS_KEY,
    InvalidKey,
    InvalidSignature,
    MalformedLeaf,
    account_key,
    compute_genesis_hash,
    compute_signing_digest,
    decode_account_leaf,
    decode_globals_leaf,
    decode_instrument_leaf,
    decode_key,
    decode_leaf,
    encode_instrument_leaf,
    instrument_key,
    leaf_hash,
    recover_signers,
)
from verifier.groth16 import MalformedInput, PreparedVerifyingKey, batch_verify, prepare_verifying_key, verify_proof
from verifier.merkle import InvalidProof, compute_root_from_multiproof, keccak256
from verifier.published import Published, PublishedBatch, PublishedFormatError, from_hex, read_published
from verifier.segment import SegmentShape, compute_public_inputs, compute_segment_public, count_public_inputs, get_step_keys
from verifier.snarkjs import parse_proof, parse_public_inputs, parse_verifying_key
from verifier.wire import (
    Deposit,
    Genesis,
    Liquidate,
    OptionTrade,
    OracleUpdate,
    PerpTrade,
    SettleExpired,
    Transfer,
    Withdraw,
)

Step = dict[int, tuple[bytes, bytes]]  # one transaction's leaves: key -> (before, after)


REASONS: dict[str, str] = {
    "malformed": "a published file is missing or does not parse",
    "vk_hash_mismatch": "the verifying key is not the one the batch (or the caller) names",
    "malformed_key": "the verifying key is not a valid BN254 Groth16 key",
    "shape_mismatch": "the key, the segment size or a segment's leaves do not fit the segment circuit",
    "receipt_mismatch": "receipts do not line up with the transactions (index, type, hash)",
    "segment_order": "segments are not numbered 0..n-1 in order",
    "segment_coverage": "segments do not hold exactly the accepted transactions in batch order",
    "step_mismatch": "a leaf step does not hold exactly its transaction's leaves",
    "missing_before_leaf": "a leaf the batch reads is not published with the previous state",
    "malformed_multiproof": "the multiproof is not well-formed",
    "malformed_leaf": "a leaf is not the canonical encoding of its key's kind",
    "prev_root_mismatch": "the before leaves are not in the previous state root",
    "genesis_mismatch": "the published genesis is not the one the state commits to",
    "broken_chain": "a leaf does not start where the previous step or segment left it",
    "bad_signature": "a signature does not recover to its signer's registered address",
    "bad_nonce": "a nonce, deposit id or oracle timestamp is not the next one",
    "deposit_not_queued": "the batch's deposits are not the L1 deposit queue's entries",
    "invalid_oracle_update": "an accepted oracle update breaks an oracle rule",
    "oracle_write_mismatch": "an oracle update writes instrument leaves its signed values do not give",
    "instrument_write_mismatch": "a transaction other than an oracle update changes oracle values",
    "proof_count_mismatch": "not one proof per segment",
    "proof_malformed": "a proof is not well-formed (points off the curve or subgroup, bad JSON)",
    "proof_invalid": "the proofs do not verify for the public inputs rebuilt from the batch",
    "public_input_not_in_field": "a published public input is not below the field modulus",
    "public_input_mismatch": "a published public file differs from the rebuilt inputs",
    "new_root_mismatch": "the diffs applied to the previous state do not give the claimed root",
    "segment_root_mismatch": "a segment root is not the root of its diff",
    "commitment_mismatch": "the batch commitment is not the root over the segment roots",
}


class VerificationError(Exception):
    """The published batch does not verify; `reason` is a stable code (`REASONS`), the message says why."""

    def __init__(self, reason: str, message: str):
        # reason codes are an interface: only the listed ones
        if reason not in REASONS:
            raise ValueError(f"unknown verification reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.timings: dict[str, float] = {}


@dataclass
class VerificationReport:
    batch: int
    prev_root: str
    new_root: str
    commitment: str
    vk_hash: str
    n_transactions: int
    n_accepted: int
    n_segments: int
    n_slots: int
    deposits_checked: bool = False  # against an L1 deposit queue (without one, deposits are unauthenticated)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per check

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def check(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)


# --- 1. format -----------------------------------------------------------------------------------


def process_key(vk_json: Mapping[str, Any], batch: PublishedBatch, expected_vk_hash: bytes | None) -> tuple[PreparedVerifyingKey, SegmentShape]:
    """The prepared key and the circuit shape, once the key is the one the batch and caller name."""
    vk_hash = compute_vk_hash(vk_json)
    # the proofs are for the key the batch names
    if vk_hash != from_hex(batch.vk_hash):
        raise VerificationError("vk_hash_mismatch", f"verification_key.json hashes to 0x{vk_hash.hex()}, the batch names {batch.vk_hash}")
    # ... and for the key the verifier trusts, when it pins one
    if expected_vk_hash is not None and vk_hash != expected_vk_hash:
        raise VerificationError("vk_hash_mismatch", f"verification_key.json hashes to 0x{vk_hash.hex()}, expected 0x{expected_vk_hash.hex()}")
    try:
        pvk = prepare_verifying_key(parse_verifying_key(dict(vk_json)))
    except MalformedInput as exc:
        raise VerificationError("malformed_key", str(exc)) from None
    try:
        shape = SegmentShape.from_genesis(batch.genesis, batch.n_slots)
    except ValueError as exc:
        raise VerificationError("shape_mismatch", str(exc)) from None
    # the key is the segment circuit's of this shape (one public input per window word)
    if pvk.vk.n_public != count_public_inputs(shape):
        raise VerificationError(
            "shape_mismatch", f"the key has {pvk.vk.n_public} public inputs, a {batch.n_slots}-slot segment {count_public_inputs(shape)}"
        )
    return pvk, shape


def get_accepted_indices(batch: PublishedBatch) -> list[int]:
    """Indices of the accepted transactions, after checking the receipts line up with them."""
    # one receipt per transaction
    if len(batch.receipts) != len(batch.transactions):
        raise VerificationError("receipt_mismatch", f"{len(batch.transactions)} transactions but {len(batch.receipts)} receipts")
    for index, (tx, receipt) in enumerate(zip(batch.transactions, batch.receipts)):
        # receipt i is transaction i's
        if receipt.index != index or receipt.type != tx.type:
            raise VerificationError("receipt_mismatch", f"receipt {index} is for a {receipt.type} at index {receipt.index}, not transaction {index} ({tx.type})")
    return [r.index for r in batch.receipts if r.status == "accepted"]


def check_segment_coverage(batch: PublishedBatch, accepted: Sequence[int]) -> None:
    """Segments 0..n-1 hold exactly the accepted transactions, in batch order, full but the last."""
    indices = [s.index for s in batch.segments]
    # segments in order, none missing or repeated
    if indices != list(range(len(indices))):
        raise VerificationError("segment_order", f"segments are numbered {indices[:8]}, expected 0..{len(indices) - 1}")
    covered = [i for s in batch.segments for i in s.tx_indices]
    if covered != list(accepted):
        raise VerificationError("segment_coverage", describe_coverage(covered, accepted))
    for segment in batch.segments:
        is_last = segment.index == len(batch.segments) - 1
        # a fixed shape: every segment full but the last, which holds at least one transaction
        if len(segment.tx_indices) != batch.n_slots and not (is_last and 1 <= len(segment.tx_indices) < batch.n_slots):
            raise VerificationError(
                "segment_coverage", f"segment {segment.index} holds {len(segment.tx_indices)} transactions, segments hold {batch.n_slots}"
            )
        # one leaf step per transaction
        if len(segment.steps) != len(segment.tx_indices):
            raise VerificationError("step_mismatch", f"segment {segment.index} has {len(segment.tx_indices)} transactions but {len(segment.steps)} leaf steps")


def describe_coverage(covered: Sequence[int], accepted: Sequence[int]) -> str:
    missing = sorted(set(accepted) - set(covered))
    extra = sorted(set(covered) - set(accepted))
    repeated = sorted({i for i in covered if covered.count(i) > 1})
    if missing:
        return f"accepted transactions {missing[:8]} are in no segment"
    if extra:
        return f"segments hold transactions {extra[:8]} that are not accepted"
    if repeated:
        return f"transactions {repeated[:8]} are in more than one segment slot"
    return "segments hold the accepted transactions out of batch order"


def get_steps(batch: PublishedBatch) -> list[list[Step]]:
    """Per segment, its leaf steps as key -> (bytes before, bytes after)."""
    return [
        [{leaf.key: (from_hex(leaf.before), from_hex(leaf.after)) for leaf in step} for step in segment.steps]
        for segment in batch.segments
    ]


# --- 2. before leaves ----------------------------------------------------------------------------


def check_leaf(key: int, data: bytes, where: str) -> None:
    try:
        decode_leaf(key, data)
    except (MalformedLeaf, InvalidKey) as exc:
        # only canonical leaves of the key's kind
        raise VerificationError("malformed_leaf", f"{where}: leaf {key:#x}: {exc}") from None


def check_before_leaves(batch: PublishedBatch, steps: Sequence[Sequence[Step]]) -> dict[int, bytes]:
    """The before leaves, proven against the previous root and bound to the genesis."""
    genesis = batch.genesis
    leaves = {leaf.key: from_hex(leaf.value) for leaf in batch.leaves_before}
    needed = {key for segment in steps for step in segment for key in step}
    needed |= {instrument_key(spec.id) for spec in genesis.instruments} | {GLOBALS_KEY}
    missing = sorted(needed - set(leaves))
    # every leaf the batch reads is published with its proof
    if missing:
        raise VerificationError("missing_before_leaf", f"{len(missing)} touched leaves are not in leaves_before, first {missing[0]:#x}")
    for key, data in leaves.items():
        check_leaf(key, data, "leaves_before")
    try:
        proof = batch.multiproof.to_multiproof()
        root = compute_root_from_multiproof({key: leaf_hash(data) for key, data in leaves.items()}, proof)
    except InvalidProof as exc:
        raise VerificationError("malformed_multiproof", str(exc)) from None
    # the batch starts from the state the previous root commits to
    if root != from_hex(batch.prev_root):
        raise VerificationError(
            "prev_root_mismatch", f"the before leaves and their multiproof give root 0x{root.hex()}, not the previous root {batch.prev_root}"
        )
    check_genesis_binding(genesis, leaves)
    return leaves


def check_genesis_binding(genesis: Genesis, leaves: Mapping[int, bytes]) -> None:
    """The published genesis is the one the state commits to, with every instrument listed."""
    globals_leaf = decode_globals_leaf(leaves[GLOBALS_KEY]) if leaves[GLOBALS_KEY] else None
    # the globals leaf holds the hash of the genesis the rules run with
    if globals_leaf is None or globals_leaf.genesis_hash != compute_genesis_hash(genesis):
        raise VerificationError("genesis_mismatch", "the state's globals leaf does not commit to the published genesis")
    for spec in genesis.instruments:
        data = leaves[instrument_key(spec.id)]
        # every genesis instrument has its leaf, of its kind
        if data == EMPTY_LEAF_BYTES or decode_instrument_leaf(data).kind != spec.kind:
            raise VerificationError("genesis_mismatch", f"instrument {spec.id} of the genesis has no {spec.kind} leaf in the state")


# --- 3. chaining ---------------------------------------------------------------------------------


def check_chaining(steps: Sequence[Sequence[Step]], leaves_before: Mapping[int, bytes]) -> tuple[list[list[LeafChange]], list[LeafChange]]:
    """(each segment's diff, the batch's net diff), checking every leaf chains from the before leaves."""
    diffs = []
    for index, segment in enumerate(steps):
        try:
            diffs.append(fold_leaf_changes(segment))
        except BrokenChain as exc:
            raise VerificationError("broken_chain", f"segment {index}: {exc}") from None
    try:
        net = fold_segment_diffs(diffs, leaves_before)
    except BrokenChain as exc:
        raise VerificationError("broken_chain", f"{exc} (segment 0 starts from the before leaves)") from None
    return diffs, net


# --- 4. transactions, natively ---------------------------------------------------------------------


def get_signing_accounts(tx: object) -> list[tuple[int, int]]:
    """(account, nonce) of each signature field, in the model's order (deposits and oracle
    updates are signed by an address, not an account)."""
    if isinstance(tx, Withdraw):
        return [(tx.account, tx.nonce)]
    if isinstance(tx, Transfer):
        return [(tx.sender, tx.nonce)]
    if isinstance(tx, PerpTrade):
        return [(tx.maker, tx.maker_nonce), (tx.taker, tx.taker_nonce)]
    if isinstance(tx, OptionTrade):
        return [(tx.buyer, tx.buyer_nonce), (tx.seller, tx.seller_nonce)]
    if isinstance(tx, Liquidate):
        return [(tx.liquidator, tx.nonce)]
    if isinstance(tx, SettleExpired):
        return [(tx.sender, tx.nonce)]
    return []


def get_oracle_instruments(tx: OracleUpdate) -> set[int]:
    return {m.instrument for m in tx.marks} | {f.market for f in tx.funding} | {r.instrument for r in tx.risk_arrays} | {
        s.instrument for s in tx.settlements
    }


def get_expected_step_keys(tx: object) -> set[int]:
    if isinstance(tx, OracleUpdate):
        return {GLOBALS_KEY} | {instrument_key(i) for i in get_oracle_instruments(tx)}
    return set(get_step_keys(tx))


def check_signatures(tx: object, step: Step, genesis: Genesis, where: str) -> None:
    """Every signature recovers to its signer's registered address; nonces, deposit ids and the
    oracle clock move by one step (the circuit proves these too; here they name the reason)."""
    try:
        signers = recover_signers(tx, genesis.signing_domain)
    except InvalidSignature as exc:
        raise VerificationError("bad_signature", f"{where}: unrecoverable signature: {exc}") from None
    globals_before = decode_globals_leaf(step[GLOBALS_KEY][0])
    globals_after = decode_globals_leaf(step[GLOBALS_KEY][1])
    if isinstance(tx, OracleUpdate):
        # the oracle key fixed at genesis signs prices
        if signers[0] != genesis.oracle_address:
            raise VerificationError("bad_signature", f"{where}: oracle update signed by {signers[0]}, the oracle is {genesis.oracle_address}")
        # the update follows the last one applied: none is skipped
        if tx.previous_timestamp != globals_before.oracle_time:
            raise VerificationError(
                "bad_nonce", f"{where}: oracle update follows the update of {tx.previous_timestamp}, the oracle time is {globals_before.oracle_time}"
            )
        # oracle time strictly increases (its replay protection)
        if not globals_before.oracle_time < tx.timestamp == globals_after.oracle_time:
            raise VerificationError("bad_nonce", f"{where}: oracle timestamp {tx.timestamp} after oracle time {globals_before.oracle_time}")
        return
    if isinstance(tx, Deposit):
        # no signature: the L1 queue entry authorises it (`check_deposits_against_queue`)
        # the L1 queue is consumed in order (the deposit's replay protection)
        if not tx.deposit_id == globals_before.deposit_count == globals_after.deposit_count - 1:
            raise VerificationError("bad_nonce", f"{where}: deposit id {tx.deposit_id}, the queue is at {globals_before.deposit_count}")
        return
    for (account, nonce), signer in zip(get_signing_accounts(tx), signers, strict=True):
        before, after = step[account_key(account)]
        # only registered accounts sign
        if before == EMPTY_LEAF_BYTES:
            raise VerificationError("bad_signature", f"{where}: account {account} has no deposit yet")
        leaf = decode_account_leaf(before)
        # the signature is the account's key
        if signer != leaf.address:
            raise VerificationError("bad_signature", f"{where}: account {account} belongs to {leaf.address}, signed by {signer}")
        # the account's next nonce, consumed once
        if nonce != leaf.nonce or decode_account_leaf(after).nonce != leaf.nonce + 1:
            raise VerificationError("bad_nonce", f"{where}: account {account} is at nonce {leaf.nonce}, the transaction carries {nonce}")


def compute_oracle_writes(tx: OracleUpdate, step: Step, genesis: Genesis, where: str) -> dict[int, bytes]:
    """The instrument leaves an oracle update writes, by key, rebuilt with the oracle rules."""
    specs = {spec.id: spec for spec in genesis.instruments}
    unknown = sorted(get_oracle_instruments(tx) - set(specs))
    # every listed instrument exists
    if unknown:
        raise VerificationError("invalid_oracle_update", f"{where}: unknown instruments {unknown}")
    for funding in tx.funding:
        # funding only for perpetual markets
        if specs[funding.market].kind != "perp":
            raise VerificationError("invalid_oracle_update", f"{where}: funding for instrument {funding.market}, not a perpetual")
    for risk in tx.risk_arrays:
        # one risk value per scenario of the grid
        if len(risk.values) != genesis.risk.n_scenarios:
            raise VerificationError("invalid_oracle_update", f"{where}: risk array of {risk.instrument} has {len(risk.values)} values")
    old = {i: decode_instrument_leaf(step[instrument_key(i)][0]) for i in get_oracle_instruments(tx)}
    for settlement in tx.settlements:
        spec = specs[settlement.instrument]
        # settlement only for expired option series, once
        if spec.kind != "option" or spec.expiry > tx.timestamp or old[settlement.instrument].settlement is not None:
            raise VerificationError("invalid_oracle_update", f"{where}: settlement of instrument {settlement.instrument} not allowed")
    marks = {m.instrument: m.price for m in tx.marks}
    funding_indices = {f.market: f.index for f in tx.funding}
    risks = {r.instrument: tuple(r.values) for r in tx.risk_arrays}
    settlements = {s.instrument: s.price for s in tx.settlements}
    return {
        instrument_key(i): encode_instrument_leaf(
            i,
            leaf.kind,
            marks.get(i, leaf.mark),
            funding_indices.get(i, leaf.funding_index),
            leaf.open_interest,
            settlements.get(i, leaf.settlement),
            risks.get(i, leaf.risk_array),
        )
        for i, leaf in old.items()
    }


def check_instrument_writes(tx: object, step: Step, genesis: Genesis, where: str) -> None:
    """Instrument leaves change as the rules say: an oracle update writes its values; any other
    transaction moves open interest only (the circuit proves that delta)."""
    if isinstance(tx, OracleUpdate):
        for key, expected in compute_oracle_writes(tx, step, genesis, where).items():
            # the leaf the oracle's signed values give
            if step[key][1] != expected:
                raise VerificationError("oracle_write_mismatch", f"{where}: instrument leaf {key:#x} is not what the signed oracle update writes")
        return
    for key, (before, after) in step.items():
        if decode_key(key).kind != "instrument":
            continue
        old, new = decode_instrument_leaf(before), decode_instrument_leaf(after)
        expected = encode_instrument_leaf(old.id, old.kind, old.mark, old.funding_index, new.open_interest, old.settlement, old.risk_array)
        # oracle values only change through signed oracle updates
        if after != expected:
            raise VerificationError("instrument_write_mismatch", f"{where}: a {getattr(tx, 'type', '?')} changes instrument {old.id}'s oracle values")


def check_step(tx: object, step: Step, genesis: Genesis, where: str) -> None:
    keys = set(step)
    expected = get_expected_step_keys(tx)
    # a step holds exactly its slot's leaves: anything else would change unproven
    if keys != expected:
        raise VerificationError(
            "step_mismatch", f"{where}: the leaf step covers {sorted(map(hex, keys - expected))} beyond / lacks {sorted(map(hex, expected - keys))}"
        )
    for key, (before, after) in step.items():
        check_leaf(key, before, where)
        check_leaf(key, after, where)
    check_signatures(tx, step, genesis, where)
    check_instrument_writes(tx, step, genesis, where)
    # the globals leaf stays bound to the genesis
    if decode_globals_leaf(step[GLOBALS_KEY][1]).genesis_hash != decode_globals_leaf(step[GLOBALS_KEY][0]).genesis_hash:
        raise VerificationError("genesis_mismatch", f"{where}: the globals leaf's genesis hash changes")


def check_transactions(batch: PublishedBatch, steps: Sequence[Sequence[Step]]) -> None:
    for segment, segment_steps in zip(batch.segments, steps):
        for index, step in zip(segment.tx_indices, segment_steps):
            tx = batch.transactions[index]
            where = f"transaction {index} ({tx.type}, segment {segment.index})"
            try:
                check_step(tx, step, batch.genesis, where)
            except MalformedLeaf as exc:
                # e.g. an account the transaction needs is absent before or after it
                raise VerificationError("malformed_leaf", f"{where}: {exc}") from None
    for index, (tx, receipt) in enumerate(zip(batch.transactions, batch.receipts)):
        # a receipt names its transaction by its EIP-712 digest
        if receipt.tx_hash != "0x" + compute_signing_digest(tx, batch.genesis.signing_domain).hex():
            raise VerificationError("receipt_mismatch", f"receipt {index} names transaction hash {receipt.tx_hash}, not transaction {index}'s")


QueueHash = Callable[[int], bytes]  # the L1 queue's rolling hash after n deposits (Rollup.deposit_hashes(n))


def compute_queue_hash(previous: bytes, deposit: Deposit) -> bytes:
    """The L1 queue's rolling hash after `deposit` (Rollup.vy: keccak256(abi_encode(previous,
    account, sender, amount)))."""
    address = bytes(12) + bytes.fromhex(deposit.address[2:])
    return keccak256(previous + deposit.account.to_bytes(32, "big") + address + deposit.amount.to_bytes(32, "big"))


def check_deposits_against_queue(batch: PublishedBatch, accepted: Sequence[int], get_queue_hash: QueueHash) -> None:
    """The batch's deposits are the L1 queue's entries from where it stood: a deposit carries no
    signature (the queue entry is its authorisation), so without this check anyone could credit
    themselves collateral off chain (the contract does the same check on settlement)."""
    deposits = [batch.transactions[i] for i in accepted if isinstance(batch.transactions[i], Deposit)]
    if not deposits:
        return
    first = deposits[0].deposit_id
    queue_hash = get_queue_hash(first)
    for tx in deposits:
        queue_hash = compute_queue_hash(queue_hash, tx)
    # the queue holds these entries, in this order (beyond its end the L1 has no hash)
    if queue_hash != get_queue_hash(first + len(deposits)):
        raise VerificationError(
            "deposit_not_queued", f"deposits {first}..{first + len(deposits) - 1} of the batch are not the L1 queue's entries"
        )


# --- 5-7. public inputs and proofs -----------------------------------------------------------------


def compute_batch_public_inputs(
    batch: PublishedBatch, shape: SegmentShape, steps: Sequence[Sequence[Step]], leaves_before: Mapping[int, bytes]
) -> list[list[int]]:
    """Every segment's public inputs, rebuilt from published data only."""
    instruments = {instrument_key(spec.id): leaves_before[instrument_key(spec.id)] for spec in batch.genesis.instruments}
    inputs = []
    for segment, segment_steps in zip(batch.segments, steps):
        transactions = [batch.transactions[i] for i in segment.tx_indices]
        try:
            public, instruments = compute_segment_public(
                batch.genesis, shape, batch.number, segment.index, transactions, segment_steps, instruments
            )
        except (ValueError, KeyError, StopIteration) as exc:
            raise VerificationError("shape_mismatch", f"segment {segment.index} does not fit the circuit: {exc}") from None
        inputs.append(compute_public_inputs(public))
    return inputs


def check_proofs(pvk: PreparedVerifyingKey, proof_objects: Sequence[Any], inputs: Sequence[Sequence[int]], rng: Any) -> None:
    """All proofs in one batch verification; a failure names the first segment that fails alone."""
    items = []
    for index, (obj, segment_inputs) in enumerate(zip(proof_objects, inputs, strict=True)):
        try:
            items.append((parse_proof(obj), segment_inputs))
        except MalformedInput as exc:
            raise VerificationError("proof_malformed", f"segment {index}: {exc}") from None
    if not items:
        return
    try:
        is_valid = batch_verify(pvk, items, rng or secrets.SystemRandom())
    except MalformedInput as exc:
        raise VerificationError("proof_malformed", str(exc)) from None
    if is_valid:
        return
    failing = next((i for i, (proof, x) in enumerate(items) if not verify_proof(pvk, proof, x)), None)
    where = f"segment {failing}'s proof" if failing is not None else "the batch of proofs"
    raise VerificationError("proof_invalid", f"{where} does not verify for the public inputs rebuilt from batch.json")


def check_published_public(public_objects: Sequence[Any], inputs: Sequence[Sequence[int]]) -> None:
    """Published public files are a convenience: they must equal the rebuilt inputs, canonically."""
    for index, (obj, rebuilt) in enumerate(zip(public_objects, inputs, strict=True)):
        if obj is None:
            continue
        try:
            values = parse_public_inputs(obj)
        except MalformedInput as exc:
            raise VerificationError("public_input_mismatch", f"public-{index}.json: {exc}") from None
        aliased = [i for i, v in enumerate(values) if v >= BN254.r]
        # x and x + r are one field element: a published input is never reduced silently
        if aliased:
            raise VerificationError("public_input_not_in_field", f"public-{index}.json: input {aliased[0]} is not below the field modulus r")
        # what was published is what the proof was checked against
        if values != list(rebuilt):
            raise VerificationError("public_input_mismatch", f"public-{index}.json differs from the inputs rebuilt from batch.json")


# --- 8-9. new root and commitment ------------------------------------------------------------------


def check_new_root(batch: PublishedBatch, leaves_before: Mapping[int, bytes], net: Sequence[LeafChange]) -> None:
    after = dict(leaves_before)
    for key, _, value in net:
        after[key] = value
    root = compute_root_from_multiproof({key: leaf_hash(data) for key, data in after.items()}, batch.multiproof.to_multiproof())
    # the claimed root is the previous state with every diff applied
    if root != from_hex(batch.new_root):
        raise VerificationError("new_root_mismatch", f"applying the diffs gives root 0x{root.hex()}, the batch claims {batch.new_root}")


def check_commitment(batch: PublishedBatch, diffs: Sequence[Sequence[LeafChange]]) -> bytes:
    roots = [compute_segment_root(diff) for diff in diffs]
    for segment, root in zip(batch.segments, roots):
        # the segment root commits to the diff its steps fold to
        if root != from_hex(segment.root):
            raise VerificationError("segment_root_mismatch", f"segment {segment.index}'s diff has root 0x{root.hex()}, published {segment.root}")
    commitment = compute_batch_commitment(roots)
    # the batch commitment is the root over the segment roots
    if commitment != from_hex(batch.commitment):
        raise VerificationError("commitment_mismatch", f"the segment roots give commitment 0x{commitment.hex()}, published {batch.commitment}")
    return commitment


# --- the whole check ---------------------------------------------------------------------------------


@dataclass
class CheckedData:
    """What checks 1-5 establish about a batch's data, for the proofs and roots to use."""

    accepted: list[int]
    leaves_before: dict[int, bytes]
    diffs: list[list[LeafChange]]  # per segment
    net: list[LeafChange]  # the batch's
    inputs: list[list[int]]  # per segment, rebuilt


def check_batch_data(batch: PublishedBatch, shape: SegmentShape, timer: _Timer | None = None) -> CheckedData:
    """Checks 1-5 (everything but the key, the proofs, the new root and the commitment)."""
    timer = timer or _Timer()
    with timer.check("format"):
        accepted = get_accepted_indices(batch)
        check_segment_coverage(batch, accepted)
        steps = get_steps(batch)
    with timer.check("before_leaves"):
        leaves_before = check_before_leaves(batch, steps)
    with timer.check("chaining"):
        diffs, net = check_chaining(steps, leaves_before)
    with timer.check("transactions"):
        check_transactions(batch, steps)
    with timer.check("public_inputs"):
        inputs = compute_batch_public_inputs(batch, shape, steps, leaves_before)
    return CheckedData(accepted, leaves_before, diffs, net, inputs)


def verify_published_batch(
    published: Published,
    vk: Mapping[str, Any] | None = None,
    expected_vk_hash: bytes | None = None,
    rng: Any = None,
    expected_prev_root: bytes | None = None,
    deposit_queue: QueueHash | None = None,
) -> VerificationReport:
    """Verify a published batch (raises `VerificationError`). `vk`: a trusted verification_key.json
    to use instead of the published one; `expected_vk_hash`: the key hash the caller pins;
    `expected_prev_root`: the root the chain is at (the last settled batch's new root), which the
    batch must start from; `deposit_queue`: the L1 deposit queue's rolling hashes, which the
    batch's deposits must match (without it deposits are not authenticated)."""
    batch = published.batch
    timer = _Timer()
    try:
        # the batch extends the chain the caller knows
        if expected_prev_root is not None and from_hex(batch.prev_root) != expected_prev_root:
            raise VerificationError(
                "prev_root_mismatch", f"the batch starts from {batch.prev_root}, the chain is at 0x{expected_prev_root.hex()}"
            )
        with timer.check("key"):
            pvk, shape = process_key(published.vk if vk is None else vk, batch, expected_vk_hash)
        data = check_batch_data(batch, shape, timer)
        if deposit_queue is not None:
            with timer.check("deposit_queue"):
                check_deposits_against_queue(batch, data.accepted, deposit_queue)
        with timer.check("proofs"):
            # one proof per segment
            if len(published.proofs) != len(batch.segments):
                raise VerificationError("proof_count_mismatch", f"{len(batch.segments)} segments but {len(published.proofs)} proofs")
            check_proofs(pvk, published.proofs, data.inputs, rng)
            check_published_public(published.public, data.inputs)
        with timer.check("new_root"):
            check_new_root(batch, data.leaves_before, data.net)
        with timer.check("commitment"):
            commitment = check_commitment(batch, data.diffs)
    except VerificationError as exc:
        exc.timings = dict(timer.timings)
        raise
    return VerificationReport(
        batch=batch.number,
        prev_root=batch.prev_root,
        new_root=batch.new_root,
        commitment="0x" + commitment.hex(),
        vk_hash=batch.vk_hash,
        n_transactions=len(batch.transactions),
        n_accepted=len(data.accepted),
        n_segments=len(batch.segments),
        n_slots=batch.n_slots,
        deposits_checked=deposit_queue is not None,
        timings=timer.timings,
    )


def verify_published_dir(
    directory: Path,
    expected_vk_hash: bytes | None = None,
    rng: Any = None,
    expected_prev_root: bytes | None = None,
    deposit_queue: QueueHash | None = None,
) -> VerificationReport:
    """Read a published directory and verify it; unreadable content is reason `malformed`."""
    try:
        published = read_published(directory)
    except PublishedFormatError as exc:
        raise VerificationError("malformed", str(exc)) from None
    return verify_published_batch(
        published, expected_vk_hash=expected_vk_hash, rng=rng, expected_prev_root=expected_prev_root, deposit_queue=deposit_queue
    )
