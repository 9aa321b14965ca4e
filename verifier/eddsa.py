"""EdDSA-Poseidon over BabyJubJub, as circomlibjs 0.1.7's eddsa.js (signPoseidon, verifyPoseidon, prv2pub)
and circomlib's EdDSAPoseidonVerifier circuit; and the L2 key a wallet derives from an EIP-712 signature.

A private key is 32 bytes (circomlibjs takes any byte string; we fix the length). circomlibjs hashes
it with BLAKE-512 (the SHA-3 finalist, npm's blake-hash: not BLAKE2), prunes the low 32 bytes into
the secret scalar s (clear 3 low bits, clear bit 255, set bit 254), and the public key is
A = (s >> 3) * Base8. Signing the field element `msg`:
    r  = BLAKE-512(high 32 bytes of the hash || msg as 32 little-endian bytes) mod l
    R8 = r * Base8
    h  = Poseidon(R8.x, R8.y, A.x, A.y, msg)
    S  = (r + h * s) mod l        (l = the subgroup order; s, not s >> 3, as circomlibjs)
Verification accepts iff S < l and S * Base8 == R8 + (8 * h) * A. circomlibjs checks only that the
points are on the curve; here A must also be in the subgroup and not the identity (checked once per
key, then cached), and R8 is in the subgroup whenever the equation holds (S * Base8 and 8hA are).
`verify` answers False for a well-formed wrong signature and raises InvalidSignature (a
ValueError) with the reason for malformed input; `check_signature` raises for both.
`verify_many` gives verify's answers for many signatures by batch verification: one random linear
combination of their equations (Fiat-Shamir coefficients, one multi-scalar multiplication), every
R8 tested for the subgroup first so that small-order components cannot cancel, bisection to find
the bad ones when the combination fails.

Both BabyJubJub implementations (`verifier.babyjubjub.IMPLEMENTATIONS`) run every function here
(`curve=`); the fast one by default.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from verifier import babyjubjub as bjj
from verifier.babyjubjub import IDENTITY, P, SUBORDER, InvalidPoint, Point
from verifier.poseidon import get_unchecked_hash, poseidon

PrivateKey = bytes  # 32 bytes
Fr = int

# ---- BLAKE-512 (Aumasson et al., 16 rounds), as npm's blake-hash 2.0.0 lib/blake512.js ----
# Its constants are SHA-512's initial values and the first 1024 fractional bits of pi, derived
# here (not typed) and checked in the tests against blake-hash's outputs.


def _pi_fraction_bits(bits: int) -> int:
    """floor(frac(pi) * 2^bits), by Machin's formula in fixed point with guard bits."""
    scale = 1 << (bits + 64)

    def arctan_inv(x: int) -> int:
        total, term, k, sign = 0, scale // x, 1, 1
        x2 = x * x
        while term:
            total += sign * (term // k)
            term //= x2
            k += 2
            sign = -sign
        return total

    pi = 4 * (4 * arctan_inv(5) - arctan_inv(239))
    return (pi >> 64) - (3 << bits)


def _sha512_iv() -> list[int]:
    # fractional parts of the square roots of the first 8 primes, 64 bits each
    from math import isqrt

    return [isqrt(prime << 128) & ((1 << 64) - 1) for prime in (2, 3, 5, 7, 11, 13, 17, 19)]


_PI = _pi_fraction_bits(1024)
_U512 = [(_PI >> (64 * (15 - i))) & ((1 << 64) - 1) for i in range(16)]
_IV512 = _sha512_iv()
# the message permutations of the BLAKE specification (blake-hash lib/blake.js `sigma`, rows 0-9;
# rounds 10-15 reuse rows 0-5)
_SIGMA = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    (14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3),
    (11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4),
    (7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8),
    (9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13),
    (2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9),
    (12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11),
    (13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10),
    (6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5),
    (10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0),
)
_M64 = (1 << 64) - 1


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (64 - n))) & _M64


def _compress(h: list[int], block: bytes, counter: int) -> None:
    m = struct.unpack(">16Q", block)
    t0, t1 = counter & _M64, counter >> 64
    u = _U512
    v = h[:] + [u[0], u[1], u[2], u[3], u[4] ^ t0, u[5] ^ t0, u[6] ^ t1, u[7] ^ t1]

    def g(r: int, a: int, b: int, c: int, d: int, i: int) -> None:
        s = _SIGMA[r % 10]
        x, y = s[2 * i], s[2 * i + 1]
        v[a] = (v[a] + v[b] + (m[x] ^ u[y])) & _M64
        v[d] = _rotr(v[d] ^ v[a], 32)
        v[c] = (v[c] + v[d]) & _M64
        v[b] = _rotr(v[b] ^ v[c], 25)
        v[a] = (v[a] + v[b] + (m[y] ^ u[x])) & _M64
        v[d] = _rotr(v[d] ^ v[a], 16)
        v[c] = (v[c] + v[d]) & _M64
        v[b] = _rotr(v[b] ^ v[c], 11)

    for r in range(16):
        g(r, 0, 4, 8, 12, 0)
        g(r, 1, 5, 9, 13, 1)
        g(r, 2, 6, 10, 14, 2)
        g(r, 3, 7, 11, 15, 3)
        g(r, 0, 5, 10, 15, 4)
        g(r, 1, 6, 11, 12, 5)
        g(r, 2, 7, 8, 13, 6)
        g(r, 3, 4, 9, 14, 7)
    for i in range(8):
        h[i] ^= v[i] ^ v[i + 8]


def blake512(data: bytes) -> bytes:
    """BLAKE-512 (salt zero), the hash circomlibjs applies to EdDSA private keys."""
    h = list(_IV512)
    bits = 8 * len(data)
    # padding: 0x80 ... 0x01 then the 128-bit length; a block holding no message bit has counter 0
    padded = bytearray(data) + b"\x80"
    while len(padded) % 128 != 112:
        padded.append(0)
    padded[-1] |= 0x01
    padded += bits.to_bytes(16, "big")
    n_blocks = len(padded) // 128
    for i in range(n_blocks):
        counter = min(bits, 1024 * (i + 1)) if 1024 * i < bits else 0
        _compress(h, bytes(padded[128 * i : 128 * (i + 1)]), counter)
    return b"".join(x.to_bytes(8, "big") for x in h)


# ---- EdDSA-Poseidon ----


class InvalidSignature(ValueError):
    """A signature, public key or message that is malformed, or (check_signature) does not verify."""


@dataclass(frozen=True)
class Signature:
    """circomlibjs's `{R8, S}`."""

    R8: Point
    S: int

    def pack(self) -> bytes:
        """circomlibjs packSignature: packed R8 || S as 32 little-endian bytes."""
        if not 0 <= self.S < 1 << 256:
            raise InvalidSignature("S does not fit in 32 bytes")
        return bjj.pack_point(self.R8) + self.S.to_bytes(32, "little")

    @classmethod
    def unpack(cls, data: bytes) -> Signature:
        if not isinstance(data, (bytes, bytearray)) or len(data) != 64:
            raise InvalidSignature("a packed signature is 64 bytes")
        try:
            r8 = bjj.unpack_point(bytes(data[:32]))
        except InvalidPoint as e:
            raise InvalidSignature(f"R8: {e}") from None
        return cls(r8, int.from_bytes(data[32:], "little"))


def _check_private_key(prv: Any) -> bytes:
    if not isinstance(prv, (bytes, bytearray)) or len(prv) != 32:
        raise ValueError("an L2 private key is 32 bytes")
    return bytes(prv)


def _check_message(msg: Any) -> None:
    if isinstance(msg, bool) or not isinstance(msg, int):
        raise InvalidSignature(f"the message must be a field element (int), got {type(msg).__name__}")
    if not 0 <= msg < P:
        raise InvalidSignature("the message is not a field element (must be in [0, p))")


def _prune(h: bytes) -> int:
    buf = bytearray(h[:32])
    buf[0] &= 0xF8
    buf[31] &= 0x7F
    buf[31] |= 0x40
    return int.from_bytes(buf, "little")


@functools.lru_cache(maxsize=4096)
def _secret(prv: bytes) -> tuple[int, bytes]:
    h = blake512(prv)
    return _prune(h), h[32:]


def prv2pub(prv: PrivateKey, curve: Any = bjj.babyjub) -> Point:
    """The public key A = (s >> 3) * Base8 of a 32-byte private key (circomlibjs prv2pub)."""
    s, _ = _secret(_check_private_key(prv))
    return curve.mul_base(s >> 3)


def compute_message_hash(r8: Point, a: Point, msg: Fr) -> Fr:
    """h = Poseidon(R8.x, R8.y, A.x, A.y, msg): the challenge, in circomlib's EdDSAPoseidonVerifier too."""
    return poseidon([r8[0], r8[1], a[0], a[1], msg])


def sign(prv: PrivateKey, msg: Fr, curve: Any = bjj.babyjub) -> Signature:
    """circomlibjs signPoseidon."""
    _check_message(msg)
    s, nonce_key = _secret(_check_private_key(prv))
    a = curve.mul_base(s >> 3)
    r = int.from_bytes(blake512(nonce_key + msg.to_bytes(32, "little")), "little") % SUBORDER
    r8 = curve.mul_base(r)
    h = compute_message_hash(r8, a, msg)
    return Signature(r8, (r + h * s) % SUBORDER)


# ---- verification ----


def _check_signature_shape(sig: Any) -> None:
    if not isinstance(sig, Signature):
        raise InvalidSignature(f"expected a Signature, got {type(sig).__name__}")
    try:
        bjj.check_point(sig.R8, "R8")
    except InvalidPoint as e:
        raise InvalidSignature(str(e)) from None
    if isinstance(sig.S, bool) or not isinstance(sig.S, int):
        raise InvalidSignature("S must be an int")
    if not 0 <= sig.S < SUBORDER:
        raise InvalidSignature("S is not below the subgroup order")


class _KeyCache:
    """Public keys already checked (on the curve, in the subgroup, not the identity), and the
    precomputed tables of the frequent ones.

    A fast table costs about 200 KB and 2.9 ms to build (benchmarks/eddsa_bench.py), and saves
    about 0.3 ms per single verification over a plain windowed multiplication. In a batch it
    saves next to nothing: there a key is one point of the MSM with its whole scalar, or with a
    table two points with 128-bit halves, about the same work. So a key gets a table only once it
    is frequent, and only when a single verification asks for it (`build`): seen TABLE_AFTER
    times, batches included, where every sighting's weight halves each AGE_EVERY sightings of any
    key (a key needs a share of about TABLE_AFTER / (2 * AGE_EVERY) of the traffic, roughly one
    signature in a thousand, to keep earning one). With 10,000 accounts signing alike no key is
    frequent and none pays for a table that would be evicted before it paid back: building a
    table per first-seen key made the node's signature pass about 10x slower.
    At most `max_tables` tables, least recently used out first (its key must earn it again); at
    most `max_keys` checked keys (about 300 bytes each), oldest out first."""

    TABLE_AFTER = 8
    AGE_EVERY = 4096

    def __init__(self, curve: Any, max_tables: int = 256, max_keys: int = 1 << 16) -> None:
        self.curve = curve
        self.max_tables = max_tables
        self.max_keys = max_keys
        self.tables: dict[Point, Any] = {}
        # key -> [weight, the age it was last updated at]: the weight decays lazily, on a lookup
        self.seen: dict[Point, list[int]] = {}
        self.sightings = 0

    def check(self, a: Any) -> None:
        """InvalidSignature unless `a` is a valid key; remembered once checked."""
        if a in self.seen or a in self.tables:
            return
        try:
            bjj.check_point(a, "public key")
        except InvalidPoint as e:
            raise InvalidSignature(str(e)) from None
        if a == IDENTITY:
            raise InvalidSignature("public key is the identity")
        if not self.curve.in_subgroup(a):
            raise InvalidSignature("public key is not in the prime-order subgroup")
        if len(self.seen) >= self.max_keys:
            self.seen.pop(next(iter(self.seen)))  # oldest first
        self.seen[a] = [0, self.sightings // self.AGE_EVERY]

    def get(self, a: Any, build: bool = True) -> Any:
        """What verification multiplies the (checked) key by, counting the sighting: its table
        when it has one or (with `build`) has just become frequent, otherwise the point itself."""
        table = self.tables.get(a)
        if table is not None:
            self.sightings += 1
            if len(self.tables) > 1:  # most recently used last
                del self.tables[a]
                self.tables[a] = table
            return table
        self.check(a)
        entry = self.seen.get(a)
        if entry is None:  # checked, then dropped as the oldest of max_keys: checked again, cheap
            entry = self.seen[a] = [0, self.sightings // self.AGE_EVERY]
        self.sightings += 1
        age = self.sightings // self.AGE_EVERY
        weight = (entry[0] >> min(age - entry[1], 64)) + 1
        if weight < self.TABLE_AFTER or not build:
            entry[0], entry[1] = weight, age
            return a
        table = self.curve.precompute(a)
        if len(self.tables) >= self.max_tables:
            self.tables.pop(next(iter(self.tables)))  # least recently used
        self.tables[a] = table
        entry[0], entry[1] = 0, age  # earned again from nothing after an eviction
        return table


_KEY_CACHES: dict[str, _KeyCache] = {}


def _get_key_cache(curve: Any) -> _KeyCache:
    cache = _KEY_CACHES.get(curve.name)
    if cache is None:
        cache = _KEY_CACHES[curve.name] = _KeyCache(curve)
    return cache


def _get_key_table(a: Any, curve: Any, build: bool = True) -> Any:
    """The key's table or the key itself (`_KeyCache.get`), after the key's checks."""
    return _get_key_cache(curve).get(a, build)


def check_public_key(a: Any, curve: Any = bjj.babyjub) -> None:
    """InvalidSignature unless `a` is a key `verify` accepts (on the curve, in the prime-order
    subgroup, not the identity); remembered as `verify` remembers it."""
    _get_key_cache(curve).check(a)


def clear_key_cache() -> None:
    """Forget every checked key and its table (benchmarks of first-seen keys; tests)."""
    _KEY_CACHES.clear()


class _Prepared(NamedTuple):
    """One checked (msg, signature, key) with what its verification equation needs."""

    r8: Point
    s: int
    a: Point
    table: Any  # the key's table (curve.precompute) or the key itself
    e: int  # 8 * h mod l
    h: Fr


_hash5 = get_unchecked_hash(5)


def _prepare(msg: Fr, sig: Signature, a: Point, curve: Any, build: bool = True) -> _Prepared:
    _check_message(msg)
    _check_signature_shape(sig)
    table = _get_key_table(a, curve, build)  # no table built for a batch: see _KeyCache
    r8 = sig.R8
    # compute_message_hash, its inputs checked above (int(): a key found in the cache may be a
    # tuple of another number type equal to the checked one)
    h = _hash5((r8[0], r8[1], int(a[0]), int(a[1]), msg))
    # A is in the subgroup of order l (checked), so 8h * A = (8h mod l) * A: a scalar the key's table covers
    return _Prepared(r8, sig.S, a, table, 8 * h % SUBORDER, h)


def _holds(item: _Prepared, curve: Any) -> bool:
    return curve.sub_base_equals(item.s, item.table, item.e, item.r8)


def verify(msg: Fr, sig: Signature, a: Point, curve: Any = bjj.babyjub) -> bool:
    """circomlibjs verifyPoseidon (argument order as there), stricter on the key: True iff the
    signature verifies; InvalidSignature for malformed input (the message says which)."""
    return _holds(_prepare(msg, sig, a, curve), curve)


def check_signature(msg: Fr, sig: Signature, a: Point, curve: Any = bjj.babyjub) -> None:
    """Raise InvalidSignature unless `sig` verifies, saying why (R8 outside the subgroup is named)."""
    if verify(msg, sig, a, curve):
        return
    if not curve.in_subgroup(sig.R8):
        raise InvalidSignature("R8 is not in the prime-order subgroup")
    raise InvalidSignature("signature does not match the message and public key")


# ---- batch verification ----
# For n signatures whose R8_i are in the subgroup, X_i = S_i * Base8 - e_i * A_i - R8_i is in the
# cyclic group of prime order l, and the single check is X_i == O. The batch checks
#     (sum z_i S_i) * Base8 - sum_A (sum_{i: A_i = A} z_i e_i) * A == sum z_i R8_i
# i.e. sum z_i X_i == O: if some X_j != O, whatever the other z_i, at most one of the 2^128 values
# z_j can take (distinct mod l) passes, so a batch with a bad signature passes with probability
# <= 2^-128. That argument needs every R8_i in the subgroup: a small-order part T_i of R8_i would
# add sum z_i T_i, which is O for half the z_i when T_i has order 2. So the R8_i are tested first,
# all together (curve.all_in_subgroup_on_curve: on the fast curve, from 256 of them, 128 random
# subset products, each one exponentiation, wrong with probability <= 2^-128; its seed comes with
# the z_i), then, if that fails, one by one; one outside is False at once, as the single verify
# answers (S * Base8 - e * A is in the subgroup, so it never equals such an R8).
# The z_i come from SHAKE-128 over the batch (Fiat-Shamir, not a random generator): the answer is
# a function of the input, the same in every process and every run (a node and an auditor re-running
# a batch agree, tests are reproducible), and an adversary choosing signatures to fool the batch
# must find a hash output among 2^128: as hard as guessing fresh random z_i. The transcript holds
# each h_i (the Poseidon hash binds R8_i, A_i and the message) and S_i.
# A failed batch is bisected: a half that passes is all valid; when the left half passes, the right
# half is known to fail without checking it; groups of INDIVIDUAL_UP_TO or fewer are checked one by
# one, and so is everything left once log2(n) + 1 equations have failed. Each sub-batch reuses the
# z_i: the bound above holds for each equation checked.

BATCH_DOMAIN = b"zk-derivatives-rollup/eddsa-poseidon-batch/v1"
# fewer signatures: one by one. With 100 keys (so distinct ones in small batches) the batch path
# matched one by one at 16 signatures and was 1.06x at 24, 1.14x at 32 (benchmarks/eddsa_bench.py's
# batch_path_forced_per_s; repeated keys move the crossover lower)
BATCH_MIN = 24
INDIVIDUAL_UP_TO = 2  # a failed sub-batch this small is settled one by one


def _batch_challenge(items: Sequence[_Prepared]) -> tuple[list[int], bytes]:
    """z_i, 128 bits each, and a 32-byte seed for the subgroup test of the R8_i, from SHAKE-128
    over (domain, n, h_i and S_i of every item): h_i binds R8_i."""
    transcript = hashlib.shake_128(BATCH_DOMAIN + len(items).to_bytes(8, "big"))
    for item in items:
        transcript.update(item.h.to_bytes(32, "big") + item.s.to_bytes(32, "big"))
    n = len(items)
    stream = transcript.digest(16 * n + 32)
    return [int.from_bytes(stream[16 * i : 16 * i + 16], "big") for i in range(n)], stream[16 * n :]


def _batch_holds(items: Sequence[_Prepared], z: Sequence[int], curve: Any) -> bool:
    """The combined equation over `items` with coefficients `z` (every R8 in the subgroup)."""
    s_total = 0
    per_key: dict[Point, list[Any]] = {}
    for item, zi in zip(items, z):
        s_total += zi * item.s
        entry = per_key.get(item.a)
        if entry is None:
            per_key[item.a] = [item.table, zi * item.e]
        else:
            entry[1] += zi * item.e
    keys = [(table, e % SUBORDER) for table, e in per_key.values()]
    return curve.batch_equals(s_total % SUBORDER, keys, [item.r8 for item in items], z)


def _settle(idx: list[int], items: Sequence[_Prepared], z: Sequence[int], answers: list[bool], curve: Any, budget: list[int], failed: bool = False) -> bool:
    """Fill answers[i] for i in idx (`failed`: their batch equation is known not to hold); True iff
    all valid. Every failed equation spends one of budget[0]; with none left, one by one."""
    if len(idx) <= INDIVIDUAL_UP_TO or budget[0] <= 0:
        for i in idx:
            answers[i] = _holds(items[i], curve)
        return all(answers[i] for i in idx)
    if not failed:
        if _batch_holds([items[i] for i in idx], [z[i] for i in idx], curve):
            for i in idx:
                answers[i] = True
            return True
        budget[0] -= 1
    mid = len(idx) // 2
    left_valid = _settle(idx[:mid], items, z, answers, curve, budget)
    # the whole failed and the left half sums to O: the right half cannot
    _settle(idx[mid:], items, z, answers, curve, budget, failed=left_valid)
    return False


def verify_many(items: Sequence[tuple[Fr, Signature, Point]], curve: Any = bjj.babyjub) -> list[bool]:
    """verify() over many (msg, sig, key): one answer each, in order, the same as verify's (up to
    a 2^-128 chance per batch equation, see above), by batch verification. Malformed input raises
    InvalidSignature as verify does, for the first such item."""
    batch = len(items) >= BATCH_MIN
    prepared = [_prepare(m, s, a, curve, not batch) for m, s, a in items]
    if not batch:
        return [_holds(item, curve) for item in prepared]
    answers = [False] * len(prepared)
    z, seed = _batch_challenge(prepared)
    # R8 outside the subgroup: False, as verify (and the batch equation would not see it); all of
    # them tested at once first (a large batch: random subset products), one by one if that fails
    if curve.all_in_subgroup_on_curve([item.r8 for item in prepared], seed):
        candidates = list(range(len(prepared)))
    else:
        candidates = [i for i, item in enumerate(prepared) if curve.in_subgroup_on_curve(item.r8)]
    # enough failed equations to bisect down to one bad signature; more bad ones than that (a flood
    # of invalid signatures) are checked one by one, so they cost at most about two batch MSMs more
    # than verify would, instead of one MSM per bisection level
    budget = [len(candidates).bit_length() + 1]
    _settle(candidates, prepared, z, answers, curve, budget)
    return answers


# ---- L2 keys derived from a wallet signature ----
# A wallet user never stores the L2 key: the wallet signs a fixed EIP-712 message in the rollup's
# domain (the L1 chain id and the Rollup contract, as every transaction) and the key is a hash of
# the signature's r. Wallets sign with RFC 6979 nonces, so r is the same every time and the key can
# always be re-derived; r alone, since s may come back low-s normalised or not and v as 0/1 or
# 27/28 depending on the wallet. A new `keyIndex` gives an unrelated key (rotation).

KEY_DERIVATION_TYPE = "DeriveL2Key"
KEY_DERIVATION_TEXT = (
    "Derive my L2 signing key for ZK Derivatives Rollup. "
    "Sign this only in an app you trust: this signature is the key to your rollup account."
)
KEY_DERIVATION_TAG = b"zk-derivatives-rollup/l2-key/v1"


def get_key_derivation_typed_data(domain: Any, key_index: int = 0) -> dict[str, Any]:
    """The EIP-712 message a wallet signs to derive its L2 key number `key_index` in `domain`
    (a verifier.wire.SigningDomain)."""
    from verifier.encoding import DOMAIN_NAME, DOMAIN_TYPE, DOMAIN_VERSION

    if isinstance(key_index, bool) or not isinstance(key_index, int) or not 0 <= key_index < 1 << 32:
        raise ValueError("key_index must be an int in [0, 2^32)")
    return {
        "types": {
            "EIP712Domain": DOMAIN_TYPE,
            KEY_DERIVATION_TYPE: [{"name": "purpose", "type": "string"}, {"name": "keyIndex", "type": "uint32"}],
        },
        "primaryType": KEY_DERIVATION_TYPE,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": domain.l1_chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": {"purpose": KEY_DERIVATION_TEXT, "keyIndex": key_index},
    }


def derive_private_key(wallet_signature: bytes) -> PrivateKey:
    """The L2 private key of a wallet's 65-byte (r || s || v) signature of the derivation message:
    keccak256(tag || r)."""
    from verifier.keccak import keccak256

    if not isinstance(wallet_signature, (bytes, bytearray)) or len(wallet_signature) != 65:
        raise ValueError("a wallet signature is 65 bytes (r || s || v)")
    r = bytes(wallet_signature[:32])
    if not any(r):
        raise ValueError("a wallet signature with r = 0 is invalid")
    return keccak256(KEY_DERIVATION_TAG + r)


def derive_private_key_with_eth_key(eth_private_key: bytes | str, domain: Any, key_index: int = 0) -> PrivateKey:
    """What a wallet does: sign the derivation message with its Ethereum key, hash the signature."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    signed = Account.sign_message(encode_typed_data(full_message=get_key_derivation_typed_data(domain, key_index)), eth_private_key)
    return derive_private_key(bytes(signed.signature))
