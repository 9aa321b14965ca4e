"""Arguments of `contracts/vy/eip712.vy` from wire transactions.

- `encode_tx_words(tx)`: (kind, words) of `compute_tx_digest` for a user transaction: the index of
  its type in `verifier.segment.SLOT_TYPES` and its eleven `TxWords` as field elements (v mod r).
- `encode_oracle_update(tx)`: (timestamp, previous_timestamp, marks, funding, risk_arrays,
  settlements) of `compute_oracle_digest` (the caller appends the domain separator). Each list holds the wire model's
  entries as tuples in field order: marks and settlements (instrument, price), funding
  (market, index), risk arrays (instrument, [values]); web3 encodes them as the Vyper structs.
- `split_signature(sig)`: (v, r, s) of `recover`.
"""

from __future__ import annotations

import dataclasses

from verifier.curve import BN254
from verifier.segment import SLOT_TYPES, compute_tx_words
from verifier.wire import OracleUpdate, WireModel

MAX_INSTRUMENTS = 16  # eip712.vy's MAX_INSTRUMENTS: entries per list of one oracle update


class UnencodableTransaction(ValueError):
    """A transaction the contract's digest functions cannot take."""


def encode_tx_words(tx: WireModel) -> tuple[int, list[int]]:
    """(kind, words) of a user transaction for compute_tx_digest."""
    # oracle updates have their own digest function
    if isinstance(tx, OracleUpdate):
        raise UnencodableTransaction("an oracle update's digest is compute_oracle_digest's, not compute_tx_digest's")
    words = dataclasses.astuple(compute_tx_words(tx))
    return SLOT_TYPES.index(tx.type), [w % BN254.r for w in words]  # type: ignore[attr-defined]


def encode_oracle_update(tx: OracleUpdate) -> tuple[int, int, list, list, list, list]:
    """(timestamp, previous_timestamp, marks, funding, risk_arrays, settlements) for compute_oracle_digest."""
    # the contract takes bounded lists
    for name in ("marks", "funding", "risk_arrays", "settlements"):
        if len(getattr(tx, name)) > MAX_INSTRUMENTS:
            raise UnencodableTransaction(f"oracle update lists {len(getattr(tx, name))} {name}, the contract takes at most {MAX_INSTRUMENTS}")
    return (
        tx.timestamp,
        tx.previous_timestamp,
        [(m.instrument, m.price) for m in tx.marks],
        [(f.market, f.index) for f in tx.funding],
        [(r.instrument, list(r.values)) for r in tx.risk_arrays],
        [(s.instrument, s.price) for s in tx.settlements],
    )


def split_signature(signature: str | bytes) -> tuple[int, int, int]:
    """(v, r, s) of an Ethereum signature r || s || v (65 bytes, 0x-hex or raw)."""
    raw = bytes.fromhex(signature[2:]) if isinstance(signature, str) else bytes(signature)
    # r (32) || s (32) || v (1)
    if len(raw) != 65:
        raise UnencodableTransaction(f"a signature is 65 bytes, got {len(raw)}")
    return raw[64], int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
