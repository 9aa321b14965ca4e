"""The escape hatch of RollupV3 from Python: force a withdrawal, dismiss an invalid one, freeze a
rollup that ignored a valid one (or censored a deposit), exit, reclaim an unconsumed deposit.

An account's owner (who opened it on L1) asks on L1 for a withdrawal, handing over the signed L2
Withdraw (checked on L1). Within the contract's delay the sequencer must settle a batch holding
that withdrawal, or dismiss the request with the account's leaf at the settled root showing the L2
would reject it (no account, open positions, another nonce, too little collateral). Otherwise
anyone may `freeze` the rollup: settlement and deposits stop, every account can `exit` once with
its collateral, proven against the last settled root (open positions are not valued: no trusted
price is left after a freeze), and every queued deposit the L2 never consumed is reclaimed.

Leaves are opened with `rollup.state_tree.AccountOpening` (the leaf's fields, its 4-ary Poseidon
path, the markets and globals hashes); the contract hashes them with the EVM Poseidon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.chain import L1
from contracts.deployment import GAS_MONEY, UNIT_WEI, fund_on_dev_chain
from verifier.encoding import parse_signature
from verifier.wire import Deposit, SigningDomain, Withdraw

ESCAPE_GAS = 3_000_000  # explicit: a path check is 12 Poseidon calls (see the tests for the gas used)


class EscapeError(ValueError):
    """An escape-hatch call that cannot be made as asked (before any transaction is sent)."""


@dataclass
class EscapeResult:
    what: str
    gas_used: int
    args: dict[str, Any]


def split_signature(signature: str) -> list[int]:
    """[v, r, s] of an Ethereum signature r || s || v, as RollupV3 takes it (checked per EIP-2 by
    `verifier.encoding.parse_signature`)."""
    r, s, recovery = parse_signature(signature)
    return [27 + recovery, r, s]


def _opening_args(opening: Any) -> list[Any]:
    """The path flattened level by level (verifier.state_tree's order), the markets and globals hashes."""
    return [[int(s) for level in opening.path for s in level], int(opening.markets_hash), int(opening.globals_hash)]


# --- forced withdrawal and freeze -------------------------------------------------------------------


def request_forced_withdrawal(
    l1: L1, rollup: Any, domain: SigningDomain, account: int, amount: int, nonce: int, private_key: bytes
) -> EscapeResult:
    """Ask, from the account owner's key, for a withdrawal of `amount` units the sequencer must
    include: signs the L2 Withdraw (`nonce` is the account's next one) and sends it with the
    request. Returns the request id and its deadline (a batch number). Raises `L1Revert` with the
    contract's reason if L1 refuses it."""
    from rollup.signing import get_address, sign, unsigned

    address = get_address(private_key)
    owner = rollup.functions.account_owner(account).call()
    # a positive amount within the wire bound
    if not 0 < amount < 2**64:
        raise EscapeError(f"a forced withdrawal needs an amount in (0, 2**64) units, got {amount}")
    # only the account's L1 owner may force its withdrawal
    if owner.lower() != address.lower():
        raise EscapeError(f"account {account} belongs to {owner} on L1, not to {address}: only its owner may force a withdrawal")
    tx = sign(unsigned(Withdraw, account=account, amount=amount, nonce=nonce), [private_key], domain)
    fund_on_dev_chain(l1, address, GAS_MONEY)
    call = rollup.functions.request_forced_withdrawal(account, amount, nonce, split_signature(tx.signature))
    receipt = l1.send(call, f"force a withdrawal of {amount} units from account {account}", gas=ESCAPE_GAS, private_key=private_key)
    event = rollup.events.ForcedWithdrawalRequested().process_receipt(receipt)[0]["args"]
    args = {
        "request_id": event["request_id"],
        "account": account,
        "amount": amount,
        "nonce": nonce,
        "deadline_batch": event["deadline_batch"],
        "l2_transaction": tx.model_dump(),
    }
    return EscapeResult("request_forced_withdrawal", receipt["gasUsed"], args)


def get_pending_forced_withdrawals(rollup: Any) -> list[tuple[int, Withdraw]]:
    """(request id, the signed L2 Withdraw) of every forced withdrawal not yet served or dismissed,
    oldest first, from the contract's events: what the sequencer must include."""
    served = rollup.functions.forced_served().call()
    pending = []
    for log in rollup.events.ForcedWithdrawalRequested().get_logs(from_block=0):
        event = log["args"]
        if event["request_id"] < served:
            continue
        v, r, s = event["signature"]
        signature = "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + format(v, "02x")
        tx = Withdraw(account=event["account"], amount=event["amount"], nonce=event["nonce"], signature=signature)
        pending.append((event["request_id"], tx))
    return sorted(pending, key=lambda item: item[0])


def dismiss_forced_withdrawal(l1: L1, rollup: Any, opening: Any, sender: str | None = None) -> EscapeResult:
    """Dismiss the oldest pending forced withdrawal with its account's opening at the settled root
    (`rollup.state_tree.AccountOpening`; an absent account opens to the empty leaf). Raises
    `L1Revert` ("... is valid: settle it") if the L2 would accept it."""
    exists = opening.fields is not None
    fields = list(opening.fields) if exists else [0, 0, 0, 0, 0, 0]
    call = rollup.functions.dismiss_forced_withdrawal(exists, *fields, *_opening_args(opening))
    receipt = l1.send(call, "dismiss a forced withdrawal", sender=sender, gas=ESCAPE_GAS)
    event = rollup.events.ForcedWithdrawalDismissed().process_receipt(receipt)[0]["args"]
    return EscapeResult("dismiss_forced_withdrawal", receipt["gasUsed"], {"request_id": event["request_id"], "reason": event["reason"]})


def freeze(l1: L1, rollup: Any, sender: str | None = None) -> EscapeResult:
    """Freeze the rollup: allowed to anyone once the oldest unserved forced withdrawal, or the
    oldest unconsumed deposit, is overdue. Raises `L1Revert` with the reason otherwise."""
    receipt = l1.send(rollup.functions.freeze(), "freeze the rollup", sender=sender, gas=ESCAPE_GAS)
    event = rollup.events.Frozen().process_receipt(receipt)[0]["args"]
    return EscapeResult("freeze", receipt["gasUsed"], {"request_id": event["request_id"]})


# --- after a freeze ---------------------------------------------------------------------------------


def exit_account(l1: L1, rollup: Any, opening: Any, sender: str | None = None) -> EscapeResult:
    """After a freeze, pay the account's collateral to the address its leaf registers, once,
    proving the leaf against the last settled root. Raises `L1Revert` with the reason if refused."""
    # an account that exists at the settled root
    if opening.fields is None:
        raise EscapeError(f"account {opening.account} has no leaf at the settled root: nothing to exit")
    call = rollup.functions.exit(opening.account, *opening.fields, *_opening_args(opening))
    receipt = l1.send(call, f"exit account {opening.account}", sender=sender, gas=ESCAPE_GAS)
    event = rollup.events.Exited().process_receipt(receipt)[0]["args"]
    args = {"account": opening.account, "recipient": event["recipient"], "amount": event["amount"], "wei": event["amount"] * UNIT_WEI}
    return EscapeResult("exit", receipt["gasUsed"], args)


def reclaim_deposit(l1: L1, rollup: Any, deposit: Deposit, sender: str | None = None) -> EscapeResult:
    """After a freeze, refund a queued deposit the L2 never consumed to its sender, once."""
    call = rollup.functions.reclaim_deposit(deposit.deposit_id, deposit.account, deposit.address, deposit.amount)
    receipt = l1.send(call, f"reclaim deposit {deposit.deposit_id}", sender=sender, gas=ESCAPE_GAS)
    args = {"deposit_id": deposit.deposit_id, "recipient": deposit.address, "amount": deposit.amount, "wei": deposit.amount * UNIT_WEI}
    return EscapeResult("reclaim_deposit", receipt["gasUsed"], args)
