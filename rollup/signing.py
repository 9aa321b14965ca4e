"""Signing transactions with secp256k1 keys, and deterministic development keys.

A transaction is signed over its EIP-712 digest (`verifier.encoding.compute_signing_digest`) with
libsecp256k1 (coincurve): deterministic RFC 6979 nonces and low s, so the signature is the one
eth-account's `sign_typed_data` produces for the same key and message. Build a transaction with
`unsigned(Model, **fields)` (placeholder signatures), then `sign(tx, keys, genesis.signing_domain)` with one key
per signature field, in the model's order (maker before taker, buyer before seller). Trades,
transfers, liquidations and settlements are signed with L2 keys (EdDSA-Poseidon, docs/l2keys.md):
pass the `L2Key` that `derive_l2_key` derives from the wallet key and the account registered.

TEST KEYS ONLY: `dev_account_key` and `dev_oracle_key` derive private keys from a public string
and a seed. Anyone can recompute them; never hold value with them.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence, TypeVar

import coincurve
from eth_hash.auto import keccak
from eth_keys.constants import SECPK1_N

from verifier.encoding import compute_checksum_address, compute_signing_digest, get_signature_fields, is_l2_signed
from verifier.wire import L2_SIGNATURE_BYTES, SigningDomain, WireModel

PrivateKey = bytes  # 32-byte secp256k1 secret
PLACEHOLDER_SIGNATURE = "0x" + "00" * 65
PLACEHOLDER_L2_SIGNATURE = "0x" + "00" * L2_SIGNATURE_BYTES
DEV_KEY_PREFIX = "zk-derivatives-rollup TEST KEY, NEVER USE WITH VALUE"

T = TypeVar("T", bound=WireModel)


class SigningError(ValueError):
    """Keys that do not fit the transaction (wrong count, invalid secret)."""


def compute_dev_key(label: str) -> PrivateKey:
    """keccak256 of the label (re-hashed with a counter in the negligible case it is not a valid
    secret, i.e. 0 or >= the group order)."""
    counter = 0
    while True:
        secret = keccak(f"{label}|{counter}".encode() if counter else label.encode())
        if 0 < int.from_bytes(secret, "big") < SECPK1_N:
            return secret
        counter += 1


def dev_account_key(seed: int, index: int) -> PrivateKey:
    """TEST key of account `index`: keccak256("<prefix>|account|seed=<seed>|index=<index>")."""
    return compute_dev_key(f"{DEV_KEY_PREFIX}|account|seed={seed}|index={index}")


def dev_oracle_key(seed: int) -> PrivateKey:
    """TEST oracle key: keccak256("<prefix>|oracle|seed=<seed>")."""
    return compute_dev_key(f"{DEV_KEY_PREFIX}|oracle|seed={seed}")


@functools.lru_cache(maxsize=1 << 18)
def get_address(private_key: PrivateKey) -> str:
    """Checksummed Ethereum address of a private key."""
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return compute_checksum_address(keccak(public)[12:])


@functools.lru_cache(maxsize=1 << 18)
def _get_signer(private_key: PrivateKey) -> coincurve.PrivateKey:
    return coincurve.PrivateKey(private_key)


def sign_digest(private_key: PrivateKey, digest: bytes) -> str:
    """Ethereum signature r || s || v (v = 27 + recovery id) over a 32-byte digest, as 0x-hex."""
    # a digest, not a message: nothing is hashed again
    if len(digest) != 32:
        raise SigningError(f"digest must be 32 bytes, got {len(digest)}")
    raw = _get_signer(private_key).sign_recoverable(digest, hasher=None)
    return "0x" + raw[:64].hex() + format(27 + raw[64], "02x")


def unsigned(model: type[T], **fields: Any) -> T:
    """A validated transaction whose signature fields hold placeholders, ready for `sign`."""
    placeholder = PLACEHOLDER_L2_SIGNATURE if is_l2_signed(model) else PLACEHOLDER_SIGNATURE
    placeholders = {name: placeholder for name in get_signature_fields(model)}
    return model.model_validate({**fields, **placeholders})


def sign(tx: T, keys: Sequence["PrivateKey | L2Key"], domain: SigningDomain) -> T:
    """`tx` with its signature fields set: one key per field, in the model's field order; an
    Ethereum private key for an Ethereum-signed type, an `L2Key` for an L2-signed one."""
    names = get_signature_fields(type(tx))
    # one key per signature field
    if len(keys) != len(names):
        raise SigningError(f"{type(tx).__name__} needs {len(names)} key(s) ({', '.join(names)}), got {len(keys)}")
    if is_l2_signed(type(tx)):
        return _sign_with_l2_keys(tx, keys, domain)
    # an L2 key cannot make an Ethereum signature
    if any(isinstance(k, L2Key) for k in keys):
        raise SigningError(f"{type(tx).__name__} is signed with Ethereum keys, got an L2 key")
    digest = compute_signing_digest(tx, domain)
    # the signature strings are in the validated form (lower-case 0x-hex, 65 bytes): no re-validation
    return tx.model_copy(update={name: sign_digest(key, digest) for name, key in zip(names, keys)})


# --- L2 keys (EdDSA-Poseidon on BabyJubJub, docs/l2keys.md) ---------------------------------------


class L2Key(NamedTuple):
    """An L2 signing key: the EdDSA private key, its public key and the id an account leaf stores."""

    private: bytes
    public: tuple[int, int]
    key_id: int


@functools.lru_cache(maxsize=1 << 16)
def derive_l2_key(eth_private_key: PrivateKey, domain: SigningDomain, key_index: int = 0) -> L2Key:
    """The L2 key a wallet derives by signing the fixed EIP-712 derivation message with
    `eth_private_key` (`verifier.eddsa.derive_private_key_with_eth_key`); `key_index` rotates the
    key. Cached: a workload uses each test key again and again."""
    from verifier.eddsa import derive_private_key_with_eth_key, prv2pub
    from verifier.l2auth import compute_key_id

    prv = derive_private_key_with_eth_key(eth_private_key, domain, key_index)
    public = prv2pub(prv)
    return L2Key(prv, public, compute_key_id(public))


def _sign_with_l2_keys(tx: T, keys: Sequence[Any], domain: SigningDomain) -> T:
    """`tx` signed with one L2 key per signature field (`sign` for L2-signed types; the keys'
    public points are known, so `verifier.l2auth.sign_l2` would recompute them)."""
    from verifier.eddsa import sign as eddsa_sign
    from verifier.l2auth import compute_l2_messages, encode_l2_signature

    # an Ethereum key cannot make an L2 signature (a wallet derives its L2 key: derive_l2_key)
    if not all(isinstance(k, L2Key) for k in keys):
        raise SigningError(f"{type(tx).__name__} is signed with L2 keys (derive_l2_key), got an Ethereum key")
    messages = compute_l2_messages(tx, domain)
    names = get_signature_fields(type(tx))
    return tx.model_copy(update={n: encode_l2_signature(k.public, eddsa_sign(k.private, m)) for n, k, m in zip(names, keys, messages)})
