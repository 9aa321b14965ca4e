"""The escape hatch from Python: force a withdrawal, dismiss an invalid one, freeze a rollup that
ignored a valid one, exit.

An account's owner (its first L1 depositor) asks on L1 for a withdrawal, handing over the signed
L2 Withdraw (checked on L1). Within the contract's delay the sequencer must settle a batch holding
that withdrawal, or dismiss the request with the account's leaf at the settled root showing the L2
would reject it (no account, open positions, another nonce, too little collateral). Otherwise
anyone may `freeze` the rollup: settlement and deposits stop, and every account can `exit` once
with its collateral, proven against the last settled root (open positions are not valued: no
trusted price is left after a freeze). Because an invalid request can always be dismissed, a
request cannot be used to freeze an honest rollup.

The exit proof is a single-key multiproof of the account's leaf, built from the node's store as
the state stood after the last settled batch (not the node's newest batch, which L1 never saw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.chain import L1
from contracts.client import GAS_MONEY, UNIT_WEI, Contracts
from contracts.eip712_args import split_signature
from contracts.multiproof import to_evm_multiproof
from rollup.merkle import SparseMerkleTree
from verifier.encoding import TREE_DEPTH, account_key, decode_account_leaf, leaf_hash
from verifier.merkle import MultiProof
from verifier.wire import Withdraw

WORD = 32
ESCAPE_GAS = 500_000  # explicit: every escape call costs well under this (see the tests)


class EscapeError(ValueError):
    """An escape-hatch call that cannot be made as asked (before any transaction is sent)."""


@dataclass
class EscapeResult:
    what: str
    gas_used: int
    args: dict[str, Any]


# --- forced withdrawal and freeze -------------------------------------------------------------------


def request_forced_withdrawal(
    l1: L1, contracts: Contracts, domain: SigningDomain, account: int, amount: int, nonce: int, private_key: bytes
) -> EscapeResult:
    """Ask, from the account owner's key, for a withdrawal of `amount` units the sequencer must
    include: signs the L2 Withdraw (`nonce` is the account's next one) and sends it with the
    request. Returns the request id and its deadline (a batch number). Raises `L1Revert` with the
    contract's reason if L1 refuses it."""
    from rollup.signing import get_address, sign, unsigned

    address = get_address(private_key)
    owner = contracts.rollup.functions.account_owner(account).call()
    # a positive amount within the wire bound
    if not 0 < amount < 2**64:
        raise EscapeError(f"a forced withdrawal needs an amount in (0, 2**64) units, got {amount}")
    # only the first depositor of the account may force its withdrawal
    if owner.lower() != address.lower():
        raise EscapeError(f"account {account} belongs to {owner} on L1, not to {address}: only its owner may force a withdrawal")
    tx = sign(unsigned(Withdraw, account=account, amount=amount, nonce=nonce), [private_key], domain)
    if l1.balance(address) < GAS_MONEY:
        l1.fund(address, GAS_MONEY)
    call = contracts.rollup.functions.request_forced_withdrawal(account, amount, nonce, list(split_signature(tx.signature)))
    receipt = l1.send(call, f"force a withdrawal of {amount} units from account {account}", gas=ESCAPE_GAS, private_key=private_key)
    event = contracts.rollup.events.ForcedWithdrawalRequested().process_receipt(receipt)[0]["args"]
    args = {
        "request_id": event["request_id"],
        "account": account,
        "recipient": event["recipient"],
        "amount": amount,
        "nonce": nonce,
        "deadline_batch": event["deadline_batch"],
        "l2_transaction": tx.model_dump(),
    }
    return EscapeResult("request_forced_withdrawal", receipt["gasUsed"], args)


def get_pending_forced_withdrawals(contracts: Contracts) -> list[tuple[int, Withdraw]]:
    """(request id, the signed L2 Withdraw) of every forced withdrawal not yet served or dismissed,
    oldest first, from the contract's events: what the sequencer must include."""
    served = contracts.rollup.functions.forced_served().call()
    pending = []
    for log in contracts.rollup.events.ForcedWithdrawalRequested().get_logs(from_block=0):
        event = log["args"]
        if event["request_id"] < served:
            continue
        v, r, s = event["signature"]
        signature = "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + format(v, "02x")
        tx = Withdraw(account=event["account"], amount=event["amount"], nonce=event["nonce"], signature=signature)
        pending.append((event["request_id"], tx))
    return sorted(pending, key=lambda item: item[0])


def dismiss_forced_withdrawal(l1: L1, contracts: Contracts, leaf_bytes: bytes, proof: MultiProof, sender: str | None = None) -> EscapeResult:
    """Dismiss the oldest pending forced withdrawal with its account's leaf (b"" for none) and
    proof at the last settled root. Raises `L1Revert` ("... is valid: settle it") if the L2 would
    accept it."""
    # one key, one bitmap word
    if len(proof.keys) != 1 or len(proof.bitmap) != 1:
        raise EscapeError("a dismissal proves one account's leaf: a single-key proof")
    words = get_leaf_words(leaf_bytes) if leaf_bytes else []
    _, siblings, bitmap = to_evm_multiproof(proof)
    call = contracts.rollup.functions.dismiss_forced_withdrawal(words, siblings, bitmap)
    receipt = l1.send(call, "dismiss a forced withdrawal", sender=sender, gas=ESCAPE_GAS)
    event = contracts.rollup.events.ForcedWithdrawalDismissed().process_receipt(receipt)[0]["args"]
    return EscapeResult("dismiss_forced_withdrawal", receipt["gasUsed"], {"request_id": event["request_id"], "reason": event["reason"]})


def freeze(l1: L1, contracts: Contracts, sender: str | None = None) -> EscapeResult:
    """Freeze the rollup: allowed to anyone once the oldest unserved forced withdrawal is overdue.
    Raises `L1Revert` ("no forced withdrawal is pending", "... is not overdue") otherwise."""
    receipt = l1.send(contracts.rollup.functions.freeze(), "freeze the rollup", sender=sender, gas=ESCAPE_GAS)
    event = contracts.rollup.events.Frozen().process_receipt(receipt)[0]["args"]
    return EscapeResult("freeze", receipt["gasUsed"], {"request_id": event["request_id"]})


# --- exit --------------------------------------------------------------------------------------------


def get_leaf_words(leaf_bytes: bytes) -> list[int]:
    """The account leaf's 32-byte words (verifier/encoding.py), as the contract hashes them."""
    # whole words
    if len(leaf_bytes) % WORD:
        raise EscapeError(f"an account leaf is whole 32-byte words, got {len(leaf_bytes)} bytes")
    # at least the account head (kind, address, collateral, nonce, position count)
    if len(leaf_bytes) < 5 * WORD:
        raise EscapeError(f"an account leaf has at least 5 words, got {len(leaf_bytes) // WORD}")
    return [int.from_bytes(leaf_bytes[i : i + WORD], "big") for i in range(0, len(leaf_bytes), WORD)]


def get_exit_proof(store: Any, account: int, batch: int) -> tuple[bytes, MultiProof]:
    """The account's leaf and its single-key multiproof as the state stood after `batch` (the last
    one settled on L1), from the node's store; the proof's root is checked against the batch's."""
    leaf, proof = get_account_proof(store, account, batch)
    # the account exists at that batch
    if not leaf:
        raise EscapeError(f"account {account} has no leaf after batch {batch}: nothing to exit")
    return leaf, proof


def get_account_proof(store: Any, account: int, batch: int) -> tuple[bytes, MultiProof]:
    """The account's leaf (b"" if it has none) and its single-key multiproof after `batch`."""
    from rollup.storage import get_leaves_before

    latest = store.latest_batch()
    # the node knows that batch
    if batch < 0 or latest is None and batch > 0 or latest is not None and batch > latest.number:
        raise EscapeError(f"the node has no batch {batch} (its latest is {latest.number if latest else 0})")
    leaves = get_leaves_before(store, batch + 1)
    key = account_key(account)
    tree = SparseMerkleTree.from_leaves({k: leaf_hash(v) for k, v in leaves.items()}, TREE_DEPTH)
    expected = store.get_batch(batch).new_root if batch else bytes.fromhex(store.get_meta("genesis_root") or "")
    # the store's leaves rebuild the batch's recorded root (else the proof would fail on chain)
    if tree.root != expected:
        raise EscapeError(f"the node's leaves do not rebuild batch {batch}'s root: its store is inconsistent")
    return leaves.get(key, b""), tree.prove_many([key])


def exit_account(l1: L1, contracts: Contracts, account: int, leaf_bytes: bytes, proof: MultiProof, sender: str | None = None) -> EscapeResult:
    """After a freeze, pay `account`'s collateral (from its leaf) to its address, once, proving the
    leaf against the last settled root. Raises `L1Revert` with the contract's reason if refused."""
    # a proof of this one account
    if tuple(proof.keys) != (account_key(account),):
        raise EscapeError(f"the exit proof must prove account {account}'s key alone, it proves keys {list(proof.keys)}")
    # one bitmap word: a single key at depth 32 has 32 slots
    if len(proof.bitmap) != 1:
        raise EscapeError(f"a single-key exit proof has one bitmap word, got {len(proof.bitmap)}")
    words = get_leaf_words(leaf_bytes)
    leaf = decode_account_leaf(leaf_bytes)  # raises MalformedLeaf for anything but an account leaf
    _, siblings, bitmap = to_evm_multiproof(proof)
    call = contracts.rollup.functions.exit(account, words, siblings, bitmap)
    receipt = l1.send(call, f"exit account {account}", sender=sender, gas=ESCAPE_GAS)
    event = contracts.rollup.events.Exited().process_receipt(receipt)[0]["args"]
    args = {"account": account, "recipient": event["recipient"], "amount": event["amount"], "wei": event["amount"] * UNIT_WEI, "address": leaf.address}
    return EscapeResult("exit", receipt["gasUsed"], args)
