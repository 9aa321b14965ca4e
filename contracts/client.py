"""The rollup's L1 side from Python: deploy the contracts, deposit, settle a published batch,
claim withdrawals, and the escape hatch.

Three contracts (contracts/vy/): `Groth16Verifier` (the segment circuit's key, IC points in data
contracts), `BatchVerifier` (checks a batch's calldata: windows against leaves, oracle replay,
signatures, proofs) and `Rollup` (funds, root, deposit queue, withdrawals, escape hatch; settles
only what the batch verifier passes, checking the multiproof against its root). Users talk to
`Rollup`; the sequencer submits batches to `BatchVerifier`.

The settlement calldata is built from a published batch (verifier/published.py) only: the
segments' public windows (rebuilt with `verifier.batch.check_batch_data`, never taken from the
prover), the instrument and globals leaves as the batch starts, the signatures in slot order, the
oracle updates' lists and the multiproof.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.contract import Contract

from contracts.build import compile_contract, get_max_segments
from contracts.chain import L1, L1Revert
from contracts.eip712_args import encode_oracle_update, split_signature
from contracts.groth16 import deploy_groth16_verifier, encode_proof_for_evm
from contracts.merkle_list import compute_list_proof
from contracts.multiproof import to_evm_multiproof
from verifier.batch import check_batch_data
from verifier.encoding import (
    GLOBALS_KEY,
    account_key,
    compute_genesis_hash,
    decode_account_leaf,
    decode_globals_leaf,
    decode_instrument_leaf,
    decode_key,
)
from verifier.published import Published, from_hex
from verifier.segment import SegmentShape
from verifier.snarkjs import parse_proof, parse_verifying_key
from verifier.wire import Deposit, Genesis, Liquidate, OptionTrade, OracleUpdate, PerpTrade, SettleExpired, Transfer, Withdraw

UNIT_WEI = 10**6  # Rollup.vy UNIT_WEI: wei of the L1 coin per collateral unit (1e-6 USD)
SETTLE_GAS = 29_000_000  # explicit: estimation would re-run the pairings about ten times
DEFAULT_FORCED_DELAY_BATCHES = 3
DEFAULT_FORCED_DELAY_SECONDS = 7 * 24 * 3600
GAS_MONEY = 10**17  # wei a user key gets from a dev account on a dev chain, to pay for its transactions


class SettlementError(ValueError):
    """A batch that cannot be turned into settlement calldata (or does not fit the contracts)."""


@dataclass
class Deployment:
    """Where the rollup lives on an L1; saved as JSON next to the node (HOME/l1/deployment.json)."""

    rollup: str
    batch_verifier: str
    groth16_verifier: str
    n_slots: int
    vk_hash: str
    genesis_root: str
    gas: dict[str, int] = field(default_factory=dict)  # deployment gas per contract

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Deployment":
        return cls(**json.loads(path.read_text()))


@dataclass
class Contracts:
    rollup: Contract
    batch_verifier: Contract
    groth16: Contract


def get_contracts(l1: L1, deployment: Deployment, shape: SegmentShape) -> Contracts:
    def at(name: str, address: str) -> Contract:
        return l1.w3.eth.contract(address=address, abi=compile_contract(name, shape).abi)

    return Contracts(
        at("Rollup", deployment.rollup),
        at("BatchVerifier", deployment.batch_verifier),
        at("Groth16Verifier", deployment.groth16_verifier),
    )


def deploy_rollup(
    l1: L1,
    genesis: Genesis,
    shape: SegmentShape,
    vk_json: dict[str, Any],
    vk_hash: str,
    genesis_root: bytes,
    forced_delay_batches: int = DEFAULT_FORCED_DELAY_BATCHES,
    forced_delay_seconds: int = DEFAULT_FORCED_DELAY_SECONDS,
) -> Deployment:
    """Deploy the three contracts for `genesis` and the segment circuit's key. The Rollup contract
    goes first, so it lands where the genesis says (the EIP-712 domain every signature binds):
    the CREATE address of the sender and its next nonce, on the genesis' L1."""
    check_deployment_target(l1, genesis)
    rollup = l1.deploy(compile_contract("Rollup", shape), genesis_root, forced_delay_batches, forced_delay_seconds)
    groth16 = deploy_groth16_verifier(l1, parse_verifying_key(vk_json), shape)
    digests = l1.deploy(compile_contract("Digests", shape))
    specs = sorted(genesis.instruments, key=lambda spec: spec.id)
    verifier = l1.deploy(
        compile_contract("BatchVerifier", shape),
        rollup.address,
        groth16.address,
        digests.address,
        genesis.oracle_address,
        compute_genesis_hash(genesis),
        [spec.id for spec in specs],
        [0 if spec.kind == "perp" else 1 for spec in specs],
        [0 if spec.kind == "perp" else spec.expiry for spec in specs],
    )
    l1.send(rollup.functions.set_batch_verifier(verifier.address), "bind the batch verifier")
    return Deployment(rollup.address, verifier.address, groth16.address, shape.n_slots, vk_hash, "0x" + genesis_root.hex())


def check_deployment_target(l1: L1, genesis: Genesis) -> None:
    """The next deployment from the L1's sender puts the Rollup contract on the chain and at the
    address the genesis names, else SettlementError (the signatures would be another deployment's)."""
    from rollup.genesis import compute_create_address

    # the genesis' L1
    if l1.chain_id != genesis.l1_chain_id:
        raise SettlementError(f"the genesis settles on L1 chain {genesis.l1_chain_id}, this L1 is chain {l1.chain_id}")
    sender = l1.default_sender
    nonce = l1.w3.eth.get_transaction_count(sender, "pending")
    address = compute_create_address(sender, nonce)
    # the genesis' Rollup address: the EIP-712 domain's verifyingContract
    if address != genesis.rollup_address:
        raise SettlementError(
            f"the genesis binds signatures to a Rollup contract at {genesis.rollup_address}; deploying from {sender} "
            f"at nonce {nonce} would put it at {address}: deploy from the account and nonce the genesis was made for"
        )


# --- settlement calldata ---------------------------------------------------------------------------


@dataclass
class SubmitArgs:
    """`BatchVerifier.submit_batch`'s arguments, in order (web3 tuples for structs)."""

    new_root: bytes
    segments: list[tuple[list[int], list[int]]]
    instruments: list[tuple]
    globals_before: tuple
    signatures: list[list[int]]
    oracles: list[tuple]
    multiproof: tuple[list[int], list[bytes], list[bytes]]

    def as_args(self) -> tuple:
        """The call's arguments: the segments' words packed (32 bytes each), then their proofs."""
        words = b"".join(w.to_bytes(32, "big") for segment_words, _ in self.segments for w in segment_words)
        proofs = [proof for _, proof in self.segments]
        return (self.new_root, words, proofs, self.instruments, self.globals_before, self.signatures, self.oracles, self.multiproof)


def get_signature_fields(tx: object) -> list[str]:
    """Signature fields in the contract's order: window A's signer first (taker, buyer)."""
    if isinstance(tx, PerpTrade):
        return [tx.taker_signature, tx.maker_signature]
    if isinstance(tx, OptionTrade):
        return [tx.buyer_signature, tx.seller_signature]
    if isinstance(tx, (Withdraw, Transfer, Liquidate, SettleExpired)):
        return [tx.signature]
    return []  # deposits: the L1 queue entry authorises them; oracle updates: their own list


def encode_instrument(data: bytes, n_scenarios: int) -> tuple:
    """An instrument leaf as `BatchVerifier`'s Instrument struct (risk array zero-padded)."""
    leaf = decode_instrument_leaf(data)
    return (
        leaf.id,
        0 if leaf.kind == "perp" else 1,
        int(leaf.mark is not None),
        leaf.mark or 0,
        leaf.funding_index,
        leaf.open_interest,
        int(leaf.settlement is not None),
        leaf.settlement or 0,
        len(leaf.risk_array),
        list(leaf.risk_array) or [0] * n_scenarios,  # a leaf has the scenario count's values or none
    )


def build_submit_args(published: Published, shape: SegmentShape) -> SubmitArgs:
    """Settlement calldata from a published batch (its public windows rebuilt from published data)."""
    batch = published.batch
    # one proof per segment
    if len(published.proofs) != len(batch.segments):
        raise SettlementError(f"{len(batch.segments)} segments but {len(published.proofs)} proofs")
    # the contract's bound (the ABI decoder would refuse more, without a reason)
    max_segments = get_max_segments(shape)
    if len(batch.segments) > max_segments:
        raise SettlementError(
            f"batch {batch.number} has {len(batch.segments)} segments; the settlement contract takes at most {max_segments} "
            f"({max_segments * shape.n_slots} transactions at {shape.n_slots} per segment): submit smaller batches"
        )
    data = check_batch_data(batch, shape)
    segments = [(inputs[2:], encode_proof_for_evm(parse_proof(proof))) for inputs, proof in zip(data.inputs, published.proofs)]
    instruments, globals_before = [], None
    for key in sorted(data.leaves_before):
        kind = decode_key(key).kind
        if kind == "instrument":
            instruments.append(encode_instrument(data.leaves_before[key], shape.n_scenarios))
        elif key == GLOBALS_KEY:
            g = decode_globals_leaf(data.leaves_before[key])
            globals_before = (g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time, g.genesis_hash)
    signatures, oracles = [], []
    for segment in batch.segments:
        for index in segment.tx_indices:
            tx = batch.transactions[index]
            signatures += [list(split_signature(sig)) for sig in get_signature_fields(tx)]
            if isinstance(tx, OracleUpdate):
                oracles.append((*encode_oracle_update(tx)[1:], list(split_signature(tx.signature))))
    keys, siblings, bitmap = to_evm_multiproof(batch.multiproof.to_multiproof())
    return SubmitArgs(from_hex(batch.new_root), segments, instruments, globals_before, signatures, oracles, (keys, siblings, bitmap))


@dataclass
class SettleResult:
    batch: int
    gas_used: int
    transactions: int
    gas_per_transaction: float
    calldata_bytes: int
    new_root: str


def submit_batch(l1: L1, contracts: Contracts, args: SubmitArgs, sender: str | None = None, gas: int = SETTLE_GAS) -> SettleResult:
    """Send the settlement transaction (raises `L1Revert` with the contract's reason)."""
    call = contracts.batch_verifier.functions.submit_batch(*args.as_args())
    try:
        receipt = l1.send(call, "settle batch", sender=sender, gas=gas)
    except L1Revert as exc:
        if exc.reason:
            raise
        # every check of the contracts has a reason: none means the gas ran out
        raise SettlementError(
            f"settling the batch failed without a reason, most likely out of gas: {len(args.segments)} segments and "
            f"{len(call._encode_transaction_data()) // 2 - 1:,} calldata bytes need more than {gas:,} gas (one L1 block); "
            "settle smaller batches (fewer transactions per `rollup submit`)"
        ) from None
    event = contracts.rollup.events.BatchSettled().process_receipt(receipt)[0]["args"]
    n = event["transactions"]
    calldata = len(call._encode_transaction_data()) // 2 - 1
    return SettleResult(event["number"], receipt["gasUsed"], n, receipt["gasUsed"] / max(n, 1), calldata, "0x" + event["new_root"].hex())


# --- withdrawals ------------------------------------------------------------------------------------


@dataclass
class WithdrawalClaim:
    batch: int
    index: int
    recipient: str
    amount: int
    proof: list[bytes]


def get_withdrawal_claims(published: Published) -> list[WithdrawalClaim]:
    """The batch's withdrawals in slot order, each with its proof against the withdrawals root."""
    batch = published.batch
    withdrawals = []
    for segment in batch.segments:
        for index, step in zip(segment.tx_indices, segment.steps):
            tx = batch.transactions[index]
            if isinstance(tx, Withdraw):
                leaf = next(x for x in step if x.key == account_key(tx.account))
                withdrawals.append((decode_account_leaf(from_hex(leaf.before)).address, tx.amount))
    # Rollup.settle's leaves: keccak(abi_encode(batch, index, recipient, amount))
    leaves = [keccak(abi_encode(["uint256", "uint256", "address", "uint256"], [batch.number, i, r, a])) for i, (r, a) in enumerate(withdrawals)]
    return [
        WithdrawalClaim(batch.number, i, recipient, amount, compute_list_proof(leaves, i))
        for i, (recipient, amount) in enumerate(withdrawals)
    ]


def claim_withdrawals(l1: L1, contracts: Contracts, published: Published, index: int | None = None) -> list[dict[str, Any]]:
    """Claim a settled batch's withdrawals (all unclaimed ones, or `index`); returns what was paid."""
    claims = get_withdrawal_claims(published)
    # the withdrawal exists
    if index is not None and not 0 <= index < len(claims):
        raise SettlementError(f"batch {published.batch.number} has {len(claims)} withdrawals, no index {index}")
    paid = []
    for claim in claims if index is None else [claims[index]]:
        call = contracts.rollup.functions.claim_withdrawal(claim.batch, claim.index, claim.recipient, claim.amount, claim.proof)
        l1.send(call, f"claim withdrawal {claim.index} of batch {claim.batch}", gas=500_000)
        paid.append({"index": claim.index, "recipient": claim.recipient, "amount": claim.amount})
    return paid


def l1_deposit(l1: L1, contracts: Contracts, account: int | None, amount: int, private_key: bytes) -> Deposit:
    """Deposit on L1 from `private_key`'s address (funded with gas money from a dev account on the
    embedded chain): to its `account`, or into a new account when `account` is None (the contract
    assigns the id). Returns the L2 Deposit that consumes the queue entry (unsigned: the entry is
    its authorisation)."""
    from rollup.signing import get_address

    address = get_address(private_key)
    value = amount * UNIT_WEI
    # gas money and the deposit itself (a dev account pays on the embedded chain)
    if l1.balance(address) < value + GAS_MONEY:
        l1.fund(address, value + GAS_MONEY)
    functions = contracts.rollup.functions
    call = functions.open_account(amount) if account is None else functions.deposit(account, amount)
    receipt = l1.send(call, "deposit", gas=300_000, value=value, private_key=private_key)
    return to_l2_deposit(contracts.rollup.events.Deposited().process_receipt(receipt)[0]["args"])


def to_l2_deposit(event: Any) -> Deposit:
    """The L2 Deposit of a `Deposited` event (the queue entry it consumes)."""
    return Deposit(deposit_id=event["deposit_id"], account=event["account"], address=event["sender"], amount=event["amount"])


def get_queued_deposits(contracts: Contracts, start: int = 0) -> list[Deposit]:
    """The L1 queue's deposits from `start` on, in queue order, as the L2 Deposits that consume
    them (from the `Deposited` events): what the sequencer includes, in this order."""
    logs = contracts.rollup.events.Deposited().get_logs(from_block=0)
    deposits = sorted((to_l2_deposit(log["args"]) for log in logs), key=lambda tx: tx.deposit_id)
    return [tx for tx in deposits if tx.deposit_id >= start]


def get_status(l1: L1, contracts: Contracts) -> dict[str, Any]:
    rollup = contracts.rollup.functions
    return {
        "rollup": contracts.rollup.address,
        "state_root": "0x" + rollup.state_root().call().hex(),
        "batch": rollup.batch_number().call(),
        "deposits_queued": rollup.deposit_count().call(),
        "deposits_consumed": rollup.deposits_consumed().call(),
        "forced_withdrawals": rollup.forced_count().call(),
        "forced_served": rollup.forced_served().call(),
        "frozen": rollup.frozen().call(),
        "balance_wei": l1.balance(contracts.rollup.address),
        "l1_block": l1.w3.eth.block_number,
    }
