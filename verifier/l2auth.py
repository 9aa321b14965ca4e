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
- An L2 signature on the wire (`verifier.wire.L2Signature`, 160 bytes) is the signer's public key
  and circomlibjs's signature, each coordinate and S a 32-byte big-endian integer:
  A.x || A.y || R8.x || R8.y || S. A travels with it because the leaf holds only the key's id;
  the points travel uncompressed because decompressing one costs a square root mod p (0.9 ms in
  Python, four times a whole verification). `check_signers` verifies each and yields the key id
  the rules compare with the account's.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

from verifier import babyjubjub as bjj
from verifier import eddsa
from verifier.encoding import (
    InvalidSignature,
    compute_domain_separator,
    get_signature_fields,
    is_l2_signed,
    recover_signers,
)
from verifier.poseidon import R, poseidon
from verifier.pubdata import compute_order_words, compute_record_words
from verifier.wire import KEY_ID_BITS, L2_SIGNATURE_BYTES, ORDER_FIELDS, Fill, Order, SigningDomain

KEY_ID_MASK = (1 << KEY_ID_BITS) - 1
NO_KEY = 0  # the leaf's key id before a registration

Point = tuple[int, int]


class InvalidKey(ValueError):
    """An L2 public key that cannot be registered."""


@functools.lru_cache(maxsize=1 << 16)
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


@functools.lru_cache(maxsize=64)
def get_domain_tag(domain: SigningDomain) -> int:
    """The domain tag of a signing domain (the genesis's: `Genesis.signing_domain`)."""
    return compute_domain_tag(compute_domain_separator(domain))


def compute_l2_message(tx: Any, domain: SigningDomain) -> int:
    """The field element a transaction's L2 signers sign (a `Fill`'s two sign their own orders:
    `compute_l2_messages`)."""
    if isinstance(tx, Fill):
        raise TypeError("a fill's signers sign their orders: use compute_l2_messages")
    return compute_tx_message(get_domain_tag(domain), compute_record_words(tx))


@functools.lru_cache(maxsize=1 << 12)  # admission asks twice per order: to verify it and for its id
def compute_order_message(order: Order, domain: SigningDomain) -> int:
    """What an order's L2 key signs: Poseidon(domain tag, the order's two words), also its id."""
    return compute_tx_message(get_domain_tag(domain), get_order_words(order))


def get_order_words(order: Order) -> tuple[int, ...]:
    return compute_order_words({f: getattr(order, f) for f in ORDER_FIELDS})


def compute_signed_words(tx: Any) -> tuple[tuple[int, ...], ...]:
    """The words each L2 signature field of `tx` signs (under the domain tag), in signature-field
    order: the transaction's record words for every field, except a fill's, whose taker and maker
    sign their own orders."""
    if isinstance(tx, Fill):
        return tuple(get_order_words(tx.get_order(side)) for side in ("taker", "maker"))
    return (compute_record_words(tx),) * len(get_signature_fields(type(tx)))


def compute_l2_messages(tx: Any, domain: SigningDomain) -> tuple[int, ...]:
    """The message each L2 signature field of `tx` signs (`compute_signed_words` under the tag)."""
    tag = get_domain_tag(domain)
    return tuple(compute_tx_message(tag, words) for words in compute_signed_words(tx))


def encode_l2_signature(a: Point, signature: eddsa.Signature) -> str:
    """The wire form: A.x || A.y || R8.x || R8.y || S, 32 bytes big-endian each, as 0x-hex."""
    values = (*a, *signature.R8, signature.S)
    return "0x" + b"".join(v.to_bytes(32, "big") for v in values).hex()


def parse_l2_signature(signature: str | bytes) -> tuple[Point, eddsa.Signature]:
    """(A, signature) of the wire form; InvalidSignature if a coordinate is not a point's or S is
    not below the subgroup order (A's subgroup is checked when it verifies)."""
    raw = bytes.fromhex(signature[2:]) if isinstance(signature, str) else bytes(signature)
    # five 32-byte integers
    if len(raw) != L2_SIGNATURE_BYTES:
        raise InvalidSignature(f"an L2 signature is {L2_SIGNATURE_BYTES} bytes, got {len(raw)}")
    ax, ay, rx, ry, s = (int.from_bytes(raw[i : i + 32], "big") for i in range(0, L2_SIGNATURE_BYTES, 32))
    for name, (x, y) in (("public key", (ax, ay)), ("R8", (rx, ry))):
        # coordinates are field elements and the point is on the curve
        if not (x < bjj.P and y < bjj.P and bjj.is_on_curve((x, y))):
            raise InvalidSignature(f"the {name} is not a BabyJubJub point")
    # S < l: no second encoding of one signature
    if s >= bjj.SUBORDER:
        raise InvalidSignature("S is not below the subgroup order")
    return (ax, ay), eddsa.Signature((rx, ry), s)


def verify_l2_signature(message: int, signature: str | bytes) -> int:
    """The key id of the key that made `signature` over `message`; InvalidSignature if it does not
    verify (or its key is not a subgroup point, or has the id 0)."""
    a, sig = parse_l2_signature(signature)
    try:
        valid = eddsa.verify(message, sig, a)
        key_id = compute_key_id(a) if valid else None
    except (eddsa.InvalidSignature, InvalidKey) as exc:
        raise InvalidSignature(str(exc)) from None
    if key_id is None:
        raise InvalidSignature(MISMATCH)
    return key_id


MISMATCH = "the L2 signature does not match the transaction and its key"


def verify_l2_signatures(items: Sequence[tuple[int, str | bytes]]) -> list[int | str]:
    """`verify_l2_signature` over many (message, signature): the key id, or why it is refused (the
    message `verify_l2_signature` raises), per item. The well-formed ones are checked together
    (`verifier.eddsa.verify_many`: one random linear combination, bisected on failure); the same
    answers as one by one."""
    out: list[int | str] = [MISMATCH] * len(items)
    parsed = []
    for i, (message, signature) in enumerate(items):
        try:
            a, sig = parse_l2_signature(signature)
            eddsa.check_public_key(a)  # a bad key answered alone: it would stop the whole batch
        except (InvalidSignature, eddsa.InvalidSignature) as exc:
            out[i] = str(exc)
            continue
        parsed.append((i, message, sig, a))
    try:
        valid = eddsa.verify_many([(m, sig, a) for _, m, sig, a in parsed])
    except eddsa.InvalidSignature:  # not expected after the checks above: one by one, with the reasons
        valid = None
    for k, (i, message, sig, a) in enumerate(parsed):
        if valid is None:
            try:
                out[i] = verify_l2_signature(message, items[i][1])
            except InvalidSignature as exc:
                out[i] = str(exc)
        elif valid[k]:
            try:
                out[i] = compute_key_id(a)
            except InvalidKey as exc:
                out[i] = str(exc)
    return out


def check_signers(tx: Any, domain: SigningDomain, digest: bytes | None = None) -> tuple[str | int, ...]:
    """Who signed, per signature field in the model's order: the recovered address of an Ethereum
    signature, the key id of a verified L2 signature. InvalidSignature if one is malformed or
    (L2) does not verify; a recovered address is compared with the account's by the rules."""
    if not is_l2_signed(type(tx)):
        return recover_signers(tx, domain, digest)
    messages = compute_l2_messages(tx, domain)
    return tuple(verify_l2_signature(m, getattr(tx, name)) for m, name in zip(messages, get_signature_fields(type(tx)), strict=True))


@functools.lru_cache(maxsize=1 << 16)
def _get_public_key(private_key: bytes) -> Point:
    return eddsa.prv2pub(private_key)


def sign_l2(private_key: bytes, message: int) -> str:
    """The wire L2 signature of `message` by an L2 private key (`verifier.eddsa`'s)."""
    return encode_l2_signature(_get_public_key(private_key), eddsa.sign(private_key, message))
