"""What an L2 key signs and how an account names its key (docs/l2keys.md).

- The key id an account leaf stores: the low `KEY_ID_BITS` (248) bits of `Poseidon(A.x, A.y)`, so
  that a registration's record carries it in one 31-byte public word (`verifier.pubdata`). 0 means
  no key is registered; a key whose id would be 0 is refused (`compute_key_id` raises), which
  happens with probability 2^-248.
- The message a transaction's L2 signers sign: `Poseidon(domain_tag, word_0, word_1)`, the
  transaction's two record words (`verifier.pubdata.compute_record_words`: its type code, every
  field and every nonce) under the rollup's domain tag, the EIP-712 domain separator reduced mod r
  (so a signature is void on another L1 chain or contract, as the Ethereum signatures are). Both
  parties of a trade sign the same message. The circuit computes exactly this from the slot's
  public words, so the public data needs no signature beside it.
"""

from __future__ import annotations

from typing import Sequence

from verifier.poseidon import R, poseidon
from verifier.wire import KEY_ID_BITS

KEY_ID_MASK = (1 << KEY_ID_BITS) - 1
NO_KEY = 0  # the leaf's key id before a registration

Point = tuple[int, int]


class InvalidKey(ValueError):
    """An L2 public key that cannot be registered."""


def compute_key_id(a: Point) -> int:
    """The key id of the public key `a` (affine BabyJubJub coordinates, each in [0, r))."""
    x, y = a
    key_id = poseidon([x, y]) & KEY_ID_MASK
    if key_id == NO_KEY:
        raise InvalidKey("the key's id is 0, which means 'no key': choose another key")
    return key_id


def compute_domain_tag(domain_separator: bytes) -> int:
    """The field element that binds L2 signatures to one deployment (EIP-712 domain separator mod r)."""
    if len(domain_separator) != 32:
        raise ValueError(f"a domain separator has 32 bytes, got {len(domain_separator)}")
    return int.from_bytes(domain_separator, "big") % R


def compute_tx_message(domain_tag: int, record_words: Sequence[int]) -> int:
    """What the L2 keys of a transaction's signers sign: Poseidon(domain tag, record words)."""
    if len(record_words) != 2:
        raise ValueError(f"a record has 2 words, got {len(record_words)}")
    return poseidon([domain_tag, *record_words])
