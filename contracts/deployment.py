"""Where a rollup lives on an L1, and what anyone reads from it: the deployment record (saved next
to the node), the contracts it names, the deposit queue and the settlement contract's status.

The record keeps what the contracts were compiled for (slots per segment and the settlement's
bounds) so that the same contracts are addressed again with the same ABI, and the verifying key's
hash, so that a verifier can pin the key to the deployment (`rollup verify --deployment`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contracts.chain import L1
from contracts.transition_build import SettlementShape, compile_v3
from verifier.oracle_section import OracleShape
from verifier.state_tree import get_instrument_table, get_tree_shape
from verifier.wire import Deposit, Genesis

UNIT_WEI = 10**6  # RollupV3.vy: wei of the L1 coin per collateral unit (1e-6 USD)
GAS_MONEY = 10**17  # wei a user key gets from a dev account on a dev chain, to pay for its transactions
DEV_CHAIN_IDS = frozenset((31337, 1337))  # anvil / hardhat, geth --dev: chains whose accounts are play money
DEFAULT_FORCED_DELAY_BATCHES = 3
DEFAULT_FORCED_DELAY_SECONDS = 7 * 24 * 3600


class SettlementError(ValueError):
    """A deployment or settlement that cannot be made as asked (before any transaction is sent)."""


@dataclass
class Deployment:
    """A rollup's contracts on one L1; saved as JSON next to the node (HOME/l1/deployment-<chain>.json)."""

    rollup: str
    verifier: str
    poseidon3: str
    poseidon4: str
    poseidon6: str
    n_slots: int
    max_segments: int
    max_slots: int
    vk_hash: str
    genesis_root: str
    gas: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Deployment":
        """Raises FileNotFoundError, or ValueError for a file that is not a deployment record."""
        try:
            fields = json.loads(path.read_text())
            return cls(**fields)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        except TypeError as exc:  # missing or unknown fields
            raise ValueError(f"not a v3 deployment record: {exc}") from None

    def get_shape(self, genesis: Genesis) -> SettlementShape:
        return get_shape(genesis, self.n_slots, self.max_segments, self.max_slots)


def get_shape(genesis: Genesis, n_slots: int, max_segments: int, max_slots: int) -> SettlementShape:
    """The settlement contracts' shape for a genesis and segment size."""
    table = get_instrument_table(s.id for s in genesis.instruments)
    oracle = OracleShape(table, genesis.risk.n_scenarios)
    return SettlementShape(n_slots, oracle, get_tree_shape(genesis), max_segments=max_segments, max_slots=max_slots)


def get_max_segments(max_batch_txs: int, max_oracle_updates: int, n_slots: int) -> int:
    """Segments a batch of at most `max_batch_txs` transactions, `max_oracle_updates` of them oracle
    updates, can take at `n_slots` per segment: the runs of transactions between oracle updates fill
    segments of n_slots, and every oracle update opens a segment (prover.transition_segments)."""
    return -(-max_batch_txs // n_slots) + max_oracle_updates + 1


def fund_on_dev_chain(l1: L1, address: str, wei: int) -> None:
    """Top `address` up to `wei` from the L1's default sender, on the embedded chain or a local
    dev chain only: on any other chain the sender's money is real and a user pays for their own."""
    if (l1.is_embedded or l1.chain_id in DEV_CHAIN_IDS) and l1.balance(address) < wei:
        l1.fund(address, wei)


PROOF_BYTES = 8 * 32  # a proof's EIP-197 words in calldata
ABI_OVERHEAD_BYTES = 4 + 4 * 32  # selector, two offsets, two lengths


def get_max_settlement_bytes(shape: SettlementShape, max_oracle_updates: int) -> int:
    """The largest settlement transaction a batch of `shape.max_slots` transactions (at most
    `max_oracle_updates` oracle updates) can need: every record the longest with its signatures,
    every segment its header and proof, the oracle sections, the ABI and the envelope."""
    from contracts.transition_build import SEGMENT_HEADER_BYTES, SIGNATURE_BYTES, TAIL_BYTES, get_max_record_bytes
    from contracts.transition_client import TX_OVERHEAD_BYTES

    record = get_max_record_bytes()
    oracle = 32 * shape.oracle.n_words + SIGNATURE_BYTES
    data = shape.max_slots * record + shape.max_segments * SEGMENT_HEADER_BYTES + max_oracle_updates * oracle + TAIL_BYTES
    return data + shape.max_segments * PROOF_BYTES + ABI_OVERHEAD_BYTES + TX_OVERHEAD_BYTES


def to_l2_deposit(event: Any) -> Deposit:
    """The L2 Deposit of a `Deposited` event (the queue entry it consumes)."""
    return Deposit(deposit_id=event["deposit_id"], account=event["account"], address=event["sender"], amount=event["amount"])


def check_deployment_target(l1: L1, genesis: Genesis) -> None:
    """The next deployment from the L1's sender puts the rollup contract on the chain and at the
    address the genesis names, else SettlementError (the signatures would be another deployment's)."""
    from rollup.genesis import compute_create_address

    # the genesis' L1
    if l1.chain_id != genesis.l1_chain_id:
        raise SettlementError(f"the genesis settles on L1 chain {genesis.l1_chain_id}, this L1 is chain {l1.chain_id}")
    sender = l1.default_sender
    nonce = l1.w3.eth.get_transaction_count(sender, "pending")
    address = compute_create_address(sender, nonce)
    # the genesis' rollup address: the EIP-712 domain's verifyingContract
    if address != genesis.rollup_address:
        raise SettlementError(
            f"the genesis binds signatures to a rollup contract at {genesis.rollup_address}; deploying from {sender} "
            f"at nonce {nonce} would put it at {address}: deploy from the account and nonce the genesis was made for"
        )


def get_queued_deposits(rollup: Any, start: int = 0) -> list[Deposit]:
    """The L1 queue's deposits from `start` on, in queue order, as the L2 Deposits that consume
    them (from the `Deposited` events): what the sequencer includes, in this order."""
    logs = rollup.events.Deposited().get_logs(from_block=0)
    deposits = sorted((to_l2_deposit(log["args"]) for log in logs), key=lambda tx: tx.deposit_id)
    return [tx for tx in deposits if tx.deposit_id >= start]


def get_status(l1: L1, rollup: Any) -> dict[str, Any]:
    functions = rollup.functions
    return {
        "rollup": rollup.address,
        "state_root": "0x" + functions.state_root().call().to_bytes(32, "big").hex(),
        "batch": functions.batch_number().call(),
        "deposits_queued": functions.deposit_count().call(),
        "deposits_consumed": functions.deposits_consumed().call(),
        "forced_withdrawals": functions.forced_count().call(),
        "forced_served": functions.forced_served().call(),
        "frozen": functions.frozen().call(),
        "balance_wei": l1.balance(rollup.address),
        "l1_block": l1.w3.eth.block_number,
    }


def open_contracts(l1: L1, deployment: Deployment, genesis: Genesis) -> Any:
    """The deployment's contracts (`contracts.transition_client.V3Deployment`), to settle and read."""
    from contracts.poseidon import get_poseidon_contract
    from contracts.transition_client import V3Deployment

    shape = deployment.get_shape(genesis)

    def at(address: str, abi: list[dict[str, Any]]) -> Any:
        return l1.w3.eth.contract(address=address, abi=abi)

    return V3Deployment(
        shape,
        at(deployment.rollup, compile_v3("RollupV3", shape).abi),
        at(deployment.verifier, compile_v3("TransitionVerifierV3", shape).abi),
        at(deployment.poseidon3, get_poseidon_contract(3).abi),
        at(deployment.poseidon4, get_poseidon_contract(4).abi),
        at(deployment.poseidon6, get_poseidon_contract(6).abi),
    )


def record_deployment(contracts: Any, vk_hash: str, genesis_root: int, gas: dict[str, int] | None = None) -> Deployment:
    """The record of a fresh deployment (`contracts.transition_client.deploy_v3`'s result)."""
    shape = contracts.shape
    return Deployment(
        contracts.rollup.address, contracts.verifier.address, contracts.poseidon3.address, contracts.poseidon4.address, contracts.poseidon6.address,
        shape.n_slots, shape.max_segments, shape.max_slots, vk_hash, "0x" + genesis_root.to_bytes(32, "big").hex(), gas or {},
    )
