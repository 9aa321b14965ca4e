"""Client of the circuit-v3 settlement contract (RollupV3.vy): deploy it, settle published batches,
open accounts and queue deposits, claim withdrawals, exit after a freeze.

It takes published data and proofs (`verifier.transition.PublishedTransition`, snarkjs JSON),
never the node. `encode_settlement` lays a batch's segments out as RollupV3's `data` (see the
contract's header); `settle` sends it, refusing first what a real L1 would not carry: calldata
over geth's 128 KB transaction limit, or (sent with EIP-7825's 16,777,216 gas cap) a settlement
that needs more gas. The contract's revert reason reaches the caller as `L1Revert.reason`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.contract import Contract

from contracts.chain import L1, L1Revert
from contracts.deployment import UNIT_WEI, check_deployment_target, to_l2_deposit
from contracts.groth16 import encode_proof_for_evm, encode_verifying_key
from contracts.poseidon import deploy_poseidon
from contracts.transition_build import TAIL_BYTES, SettlementShape, compile_v3
from verifier.encoding import parse_signature
from verifier.oracle_section import OracleShape, compute_oracle_section, compute_oracle_words
from verifier.pubdata import encode_record
from verifier.snarkjs import parse_proof, parse_verifying_key
from verifier.state_tree import TreeShape, get_instrument_table, hash_fields
from verifier.transition import PublishedTransition, PublishedTransitionSegment
from verifier.wire import Deposit, Genesis

EIP7825_GAS_CAP = 16_777_216  # one transaction's gas on mainnet since Osaka/Fusaka
TX_SIZE_LIMIT = 128 * 1024  # geth's and reth's largest pooled transaction (4 slots of 32 KB)
TX_OVERHEAD_BYTES = 200  # an EIP-1559 transaction's envelope and signature, over its calldata
DEPLOY_GAS = 8_000_000


class SettlementTooLarge(ValueError):
    """A settlement a real L1 would not carry in one transaction."""


@dataclass
class V3Deployment:
    shape: SettlementShape
    rollup: Contract
    verifier: Contract
    poseidon3: Contract
    poseidon4: Contract
    poseidon6: Contract


def get_settlement_shape(batch: PublishedTransition, **bounds: int) -> SettlementShape:
    table = get_instrument_table(s.id for s in batch.genesis.instruments)
    return SettlementShape(batch.n_slots, OracleShape(table, batch.genesis.risk.n_scenarios), TreeShape(batch.tree_depth, batch.tree_arity), **bounds)


def compute_empty_positions_hash(genesis: Genesis) -> int:
    """The positions hash of an account that holds nothing (verifier.state_tree.hash_account)."""
    table = get_instrument_table(s.id for s in genesis.instruments)
    return hash_fields([0] * (3 * len(table))) if table else 0


def deploy_v3(
    l1: L1,
    shape: SettlementShape,
    vk_json: dict[str, Any],
    genesis: Genesis,
    genesis_root: int,
    forced_delay_batches: int = 2,
    forced_delay_seconds: int = 86_400,
) -> V3Deployment:
    """RollupV3 at `genesis_root`, first, so it lands where the genesis says (the EIP-712 domain's
    verifyingContract: refused on another chain or address, as the genesis requires); then the
    verifier with the key's IC points in data contracts and the Poseidon contracts (3 and 4
    inputs, for the escape hatch), bound to the rollup once by the deployer (L1's default sender)."""
    vk = parse_verifying_key(dict(vk_json))
    # the key is the transition circuit's for this shape: the contracts are compiled for it
    if vk.n_public != shape.n_public:
        raise ValueError(f"the verifying key has {vk.n_public} public inputs; this settlement shape {shape.n_public}")
    # the escape hatch hashes 4-ary nodes with the 4-input EVM Poseidon
    if shape.tree.arity != 4:
        raise ValueError(f"RollupV3 proves 4-ary paths; the tree has arity {shape.tree.arity}")
    check_deployment_target(l1, genesis)
    rollup = l1.deploy(
        compile_v3("RollupV3", shape), genesis_root, genesis.oracle_address, compute_empty_positions_hash(genesis),
        forced_delay_batches, forced_delay_seconds, gas=DEPLOY_GAS,
    )
    key = encode_verifying_key(vk)
    chunks = [l1.deploy_data(blob) for blob in key.ic_blobs]
    verifier = l1.deploy(compile_v3("TransitionVerifierV3", shape), key.alpha1, key.beta2, key.gamma2, key.delta2, chunks, gas=DEPLOY_GAS)
    poseidon3 = deploy_poseidon(l1, 3)
    poseidon4 = deploy_poseidon(l1, 4)
    poseidon6 = deploy_poseidon(l1, 6)
    l1.send(
        rollup.functions.initialize(verifier.address, poseidon3.address, poseidon4.address, poseidon6.address),
        "bind the verifier and Poseidon", gas=200_000,
    )
    return V3Deployment(shape, rollup, verifier, poseidon3, poseidon4, poseidon6)


# --- settlement data -------------------------------------------------------------------------------


def _signature_bytes(signature: str) -> bytes:
    """A published signature (r || s || v, 65 bytes) as RollupV3 reads it: EIP-2098's 64 bytes,
    r then s with v - 27 as its top bit. Only an EIP-2 signature has that form (s <= n/2 < 2^255):
    any other is refused here (InvalidSignature, as the verifier refuses it), not sent."""
    r, s, recovery_id = parse_signature(signature)
    return r.to_bytes(32, "big") + (recovery_id << 255 | s).to_bytes(32, "big")


def get_signatures(tx: Any) -> list[str]:
    """The signatures the contract recovers, in the wire model's order: a withdrawal's and a key
    registration's Ethereum signature (deposits: none, the queue authorises; L2 signatures: none,
    the proof verified them)."""
    from verifier.encoding import get_signature_fields, is_l2_signed

    if tx.type == "deposit" or is_l2_signed(type(tx)):
        return []
    return [getattr(tx, name) for name in get_signature_fields(type(tx))]


def encode_segment(segment: PublishedTransitionSegment, oracle: OracleShape) -> bytes:
    """One segment of RollupV3's `data`: root after, oracle flag, count, oracle section, records."""
    parts = [int(segment.root_after, 16).to_bytes(32, "big"), bytes([segment.oracle_update is not None, len(segment.transactions)])]
    if segment.oracle_update is not None:
        words = compute_oracle_words(compute_oracle_section(segment.oracle_update, oracle), oracle)
        parts += [w.to_bytes(32, "big") for w in words]
        parts.append(_signature_bytes(segment.oracle_update.signature))
    for tx in segment.transactions:
        parts.append(encode_record(tx))
        parts += [_signature_bytes(s) for s in get_signatures(tx)]
    return b"".join(parts)


def encode_settlement(batch: PublishedTransition, proofs: Sequence[Any], n_segments: int | None = None) -> tuple[list[list[int]], bytes]:
    """(proofs in EIP-197 words, data) for the first `n_segments` segments (all by default): a
    prefix of a batch's segments settles as a batch of its own."""
    n = len(batch.segments) if n_segments is None else n_segments
    # one proof per settled segment
    if not 1 <= n <= len(batch.segments) or len(proofs) < n:
        raise ValueError(f"cannot settle {n} segments with {len(batch.segments)} segments and {len(proofs)} proofs")
    table = get_instrument_table(s.id for s in batch.genesis.instruments)
    oracle = OracleShape(table, batch.genesis.risk.n_scenarios)
    data = b"".join(encode_segment(s, oracle) for s in batch.segments[:n]) + bytes(TAIL_BYTES)
    return [encode_proof_for_evm(parse_proof(p)) for p in proofs[:n]], data


@dataclass
class SettleResult:
    batch: int
    gas_used: int
    calldata_bytes: int
    segments: int
    transactions: int
    receipt: Any


def settle(
    l1: L1,
    deployment: V3Deployment,
    batch: PublishedTransition,
    proofs: Sequence[Any],
    n_segments: int | None = None,
    enforce_limits: bool = True,
    gas: int | None = None,
    sender: str | None = None,
) -> SettleResult:
    """Settle the batch's first `n_segments` segments (all by default) in one transaction. With
    `enforce_limits`, a settlement over 128 KB is refused before sending and the transaction gets
    EIP-7825's gas cap (needing more raises `SettlementTooLarge`); without (benchmarks), `gas`
    (default: the block's) and any size."""
    shape = deployment.shape
    evm_proofs, data = encode_settlement(batch, proofs, n_segments)
    n = len(evm_proofs)
    # the contract was compiled for at most this many segments and bytes
    if n > shape.max_segments or len(data) > shape.max_data:
        raise SettlementTooLarge(f"{n} segments and {len(data):,} bytes exceed the contract's bounds ({shape.max_segments} segments, {shape.max_data:,} bytes)")
    call = deployment.rollup.functions.settle(evm_proofs, data)
    size = len(Web3.to_bytes(hexstr=call._encode_transaction_data())) + TX_OVERHEAD_BYTES
    # a public mempool carries it (geth and reth refuse larger transactions)
    if enforce_limits and size > TX_SIZE_LIMIT:
        raise SettlementTooLarge(f"the settlement is {size:,} bytes, over the 128 KB (131,072) transaction limit of geth and reth: settle fewer segments per transaction")
    limit = gas if gas is not None else (EIP7825_GAS_CAP if enforce_limits else l1.w3.eth.get_block("latest")["gasLimit"] - 1)
    try:
        receipt = l1.send(call, f"settle batch {batch.batch}", sender=sender, gas=limit)
    except L1Revert as exc:
        if enforce_limits and "used all the" in exc.reason:
            raise SettlementTooLarge(f"the settlement needs more than EIP-7825's {EIP7825_GAS_CAP:,} gas per transaction: settle fewer segments per transaction") from None
        raise
    n_tx = sum(len(s.transactions) for s in batch.segments[:n])
    return SettleResult(batch.batch, receipt["gasUsed"], size, n, n_tx, receipt)


# --- deposits, withdrawals, the escape hatch ---------------------------------------------------------


def deposit(l1: L1, deployment: V3Deployment, account: int | None, amount: int, private_key: bytes) -> Deposit:
    """Queue `amount` collateral units from the key's address: to its `account`, or into a new
    account when `account` is None (the contract assigns the id). Returns the L2 Deposit that
    consumes the queue entry (unsigned: the entry is its authorisation)."""
    functions = deployment.rollup.functions
    call = functions.open_account(amount) if account is None else functions.deposit(account, amount)
    receipt = l1.send(call, "deposit", value=amount * UNIT_WEI, gas=300_000, private_key=private_key)
    return to_l2_deposit(deployment.rollup.events.Deposited().process_receipt(receipt)[0]["args"])


def get_queue_hash(deployment: V3Deployment):
    """The L1 queue's rolling hash after n deposits, for `verifier.transition.verify_transition`'s
    `deposit_queue`."""
    return lambda n: deployment.rollup.functions.deposit_hashes(n).call()


def claim_withdrawal(l1: L1, deployment: V3Deployment, account: int, sender: str | None = None) -> Any:
    return l1.send(deployment.rollup.functions.claim_withdrawal(account), f"claim account {account}'s withdrawals", sender=sender, gas=200_000)


def get_exit_args(account: int, leaf_fields: Sequence[int], path: Sequence[Sequence[int]], markets_hash: int, globals_hash: int) -> list[Any]:
    """RollupV3.exit's arguments: the leaf's (address, collateral, nonce, l2_key, positions_hash, orders_hash), the path
    flattened level by level (verifier.state_tree's order), the markets and globals hashes."""
    return [account, *leaf_fields, [s for level in path for s in level], markets_hash, globals_hash]
