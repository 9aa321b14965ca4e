"""The SHA-256 hash (FIPS 180-4) as R1CS: one compression, a fixed-length message, and the bit
conversions a caller needs to feed field elements in and take the digest out.

Bits are big-endian as SHA-256 reads them: bit 0 of a message is the most significant bit of its
first byte, bit 0 of a 32-bit word its most significant bit.

Cost (see benchmarks/sha256_circuit_bench.py for the measured count): rotations and shifts rewire
bits (free); a two-input XOR is one product (x ^ y = x + y - 2xy, linear in the product wire);
the three-input XORs of the Sigma/sigma functions are two; Ch(e, f, g) = g + e(f - g) is one;
Maj(a, b, c) = ab + c(a ^ b) is two. None of these results needs a booleanity constraint: they are
polynomials of boolean wires. Every modular addition adds its words as one linear combination and
decomposes the sum once into 32 result bits and the carry bits its bound needs (one booleanity
constraint each, one packing constraint). Three savings on top:
- the new a is computed from the new e (a = e - d + Sigma0 + Maj, with -d written as NOT d + 1 -
  2^32), so T1's five terms are added once; the sum needs 2 carries instead of 3;
- W[62] and W[63] only enter T1 linearly, so they stay undecomposed sums (T1 takes a fourth carry);
- the last round's a and e are never decomposed: they go into the final state addition as sums.
Constants (the IV of a first block, the padding) fold away: a product with a constant bit is linear,
and a sum of constants is a constant word, so a block of constants (the padding block that follows
a message of whole blocks) has a free message schedule.

Witness values are computed with Python ints next to the constraints, and the linear combinations
are built from term dictionaries (internal wire id -> coefficient), as in prover/circuits/poseidon.py;
going through LinearCombination arithmetic bit by bit would cost several times more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from math import isqrt

from prover.r1cs import ONE_WIRE, ConstraintSystem, LinearCombination, LinearLike, Variable, WitnessError

Terms = dict[int, int]  # internal wire id -> coefficient, as LinearCombination.terms
Bit = tuple[Terms, int]  # a boolean-valued linear combination and its value (0 or 1)
Word = list[Bit]  # 32 bits, most significant first


# --- constants, derived as FIPS 180-4 section 4.2.2 and 5.3.3 define them ---
def _first_primes(n: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < n:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


def _icbrt(n: int) -> int:
    """floor(n ** (1/3)) for a non-negative int, exactly (Newton's iteration on ints)."""
    x = 1 << -(-n.bit_length() // 3)  # >= the root
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


def _fractional_bits(root: int) -> int:
    """The first 32 bits of the fractional part of a root computed with 32 fractional bits."""
    return root & 0xFFFFFFFF


# IV: the fractional parts of the square roots of the first 8 primes; K: of the cube roots of the first 64
IV: tuple[int, ...] = tuple(_fractional_bits(isqrt(p << 64)) for p in _first_primes(8))
K: tuple[int, ...] = tuple(_fractional_bits(_icbrt(p << 96)) for p in _first_primes(64))

WORD_BITS = 32
BLOCK_BITS = 512
STATE_BITS = 256
MAX_WORD_BITS = 248  # word_to_bits: a record word below 2^248


def _compress_native(state: Sequence[int], block: bytes) -> list[int]:
    """FIPS 180-4's compression on ints: only to check the derived constants when the module loads."""
    mask = 0xFFFFFFFF

    def rotr(x: int, n: int) -> int:
        return ((x >> n) | (x << (32 - n))) & mask

    w = [int.from_bytes(block[i : i + 4], "big") for i in range(0, 64, 4)]
    for t in range(16, 64):
        s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w.append((s1 + w[t - 7] + s0 + w[t - 16]) & mask)
    a, b, c, d, e, f, g, h = state
    for t in range(64):
        t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        a, b, c, d, e, f, g, h = (t1 + t2) & mask, a, b, c, (d + t1) & mask, e, f, g
    return [(x + y) & mask for x, y in zip(state, (a, b, c, d, e, f, g, h))]


# the empty message is one padding block: 0x80, zeros, a zero length
if b"".join(x.to_bytes(4, "big") for x in _compress_native(IV, b"\x80" + bytes(63))) != hashlib.sha256(b"").digest():
    raise RuntimeError("the derived SHA-256 constants do not reproduce hashlib's digest")


# --- bits as (terms, value) ---
_ZERO: Bit = ({}, 0)
_ONE: Bit = ({ONE_WIRE: 1}, 1)


def _const_bit(value: int) -> Bit:
    return _ONE if value else _ZERO


def _is_constant(terms: Terms) -> bool:
    return not terms or (len(terms) == 1 and ONE_WIRE in terms)


def _combine(r: int, pairs: Sequence[tuple[int, Terms]], constant: int = 0) -> Terms:
    """sum coeff * terms + constant, as merged terms."""
    out: Terms = {ONE_WIRE: constant % r} if constant % r else {}
    for coeff, terms in pairs:
        for wire, k in terms.items():
            merged = (out.get(wire, 0) + coeff * k) % r
            if merged:
                out[wire] = merged
            else:
                out.pop(wire, None)
    return out


def _product(cs: ConstraintSystem, x: Terms, y: Terms, value: int) -> Terms:
    """A new wire constrained to x * y (value given, as an integer)."""
    wire = cs.private(value)
    cs.enforce_terms(x, y, {wire.wire: 1})
    return {wire.wire: 1}


def _and(cs: ConstraintSystem, x: Bit, y: Bit) -> Bit:
    (tx, vx), (ty, vy) = x, y
    if _is_constant(tx):
        return y if vx else _ZERO
    if _is_constant(ty):
        return x if vy else _ZERO
    return _product(cs, tx, ty, vx & vy), vx & vy


def _xor(cs: ConstraintSystem, x: Bit, y: Bit) -> Bit:
    # x ^ y = x + y - 2xy
    r = cs.r
    both = _and(cs, x, y)
    return _combine(r, [(1, x[0]), (1, y[0]), (-2, both[0])]), x[1] ^ y[1]


def _xor3(cs: ConstraintSystem, x: Bit, y: Bit, z: Bit) -> Bit:
    return _xor(cs, _xor(cs, x, y), z)


def _ch(cs: ConstraintSystem, e: Bit, f: Bit, g: Bit) -> Bit:
    # Ch(e, f, g) = (e and f) xor (not e and g) = g + e * (f - g): one product
    r = cs.r
    (te, ve), (tf, vf), (tg, vg) = e, f, g
    value = vf if ve else vg
    if _is_constant(te):
        return f if ve else g
    diff = _combine(r, [(1, tf), (-1, tg)])
    if _is_constant(diff):
        return _combine(r, [(1, tg), (diff.get(ONE_WIRE, 0), te)]), value
    product = _product(cs, te, diff, ve * (vf - vg))
    return _combine(r, [(1, tg), (1, product)]), value


def _maj(cs: ConstraintSystem, a: Bit, b: Bit, c: Bit) -> Bit:
    # Maj(a, b, c) = ab + c * (a xor b): the two terms are never both 1, so the sum is the majority
    ab = _and(cs, a, b)
    a_xor_b = _combine(cs.r, [(1, a[0]), (1, b[0]), (-2, ab[0])]), a[1] ^ b[1]
    c_and = _and(cs, c, a_xor_b)
    return _combine(cs.r, [(1, ab[0]), (1, c_and[0])]), ab[1] | c_and[1]


# --- words ---
def _rotr(x: Word, n: int) -> Word:
    return x[-n:] + x[:-n]


def _shr(x: Word, n: int) -> Word:
    return [_ZERO] * n + x[:-n]


def _xor3_words(cs: ConstraintSystem, x: Word, y: Word, z: Word) -> Word:
    return [_xor3(cs, a, b, c) for a, b, c in zip(x, y, z)]


def _big_sigma0(cs: ConstraintSystem, x: Word) -> Word:
    return _xor3_words(cs, _rotr(x, 2), _rotr(x, 13), _rotr(x, 22))


def _big_sigma1(cs: ConstraintSystem, x: Word) -> Word:
    return _xor3_words(cs, _rotr(x, 6), _rotr(x, 11), _rotr(x, 25))


def _small_sigma0(cs: ConstraintSystem, x: Word) -> Word:
    # the shifted-in zeros are constants: those bits cost one product, not two
    return _xor3_words(cs, _rotr(x, 7), _rotr(x, 18), _shr(x, 3))


def _small_sigma1(cs: ConstraintSystem, x: Word) -> Word:
    return _xor3_words(cs, _rotr(x, 17), _rotr(x, 19), _shr(x, 10))


def _not(r: int, x: Word) -> Word:
    return [(_combine(r, [(-1, terms)], 1), 1 - value) for terms, value in x]


class _Sum:
    """An undecomposed sum of words: terms (over the integers until reduced mod r), value, bound."""

    __slots__ = ("pairs", "value", "bound")

    def __init__(self, pairs: list[tuple[int, Terms]], value: int, bound: int):
        self.pairs = pairs  # (coefficient, terms): the sum is their combination
        self.value = value  # its integer value (not reduced mod 2^32)
        self.bound = bound  # the largest value it can take


def _as_sum(x: Word | _Sum | int) -> _Sum:
    if isinstance(x, _Sum):
        return x
    if isinstance(x, int):
        return _Sum([(x, _ONE[0])], x, x)
    pairs = [(1 << (WORD_BITS - 1 - i), terms) for i, (terms, _) in enumerate(x)]
    value = 0
    for _, bit in x:
        value = (value << 1) | bit
    return _Sum(pairs, value, (1 << WORD_BITS) - 1)


def _add(*addends: Word | _Sum | int) -> _Sum:
    """The sum of 32-bit words (and constants), as a linear combination: free."""
    parts = [_as_sum(x) for x in addends]
    return _Sum([pair for part in parts for pair in part.pairs], sum(p.value for p in parts), sum(p.bound for p in parts))


def _reduce_word(cs: ConstraintSystem, total: _Sum) -> Word:
    """total mod 2^32 as 32 bits; a constant (a sum of constant words: a constant block's
    schedule) stays a constant, free."""
    if all(_is_constant(terms) for _, terms in total.pairs):
        return _constant_word(total.value & 0xFFFFFFFF)
    return _reduce(cs, total)[0]


def _reduce(cs: ConstraintSystem, total: _Sum) -> tuple[Word, list[Variable]]:
    """total mod 2^32 as 32 bits: total decomposed into its result and carry bits (one booleanity
    constraint each, bound.bit_length() of them, and one packing constraint)."""
    r = cs.r
    n_bits = max(total.bound.bit_length(), WORD_BITS)
    value = total.value
    packed: Terms = {}
    low: list[Variable] = []
    for i in range(n_bits):
        bit = cs.private((value >> i) & 1)
        # bit * (1 - bit) = 0
        cs.enforce_terms({bit.wire: 1}, {ONE_WIRE: 1, bit.wire: r - 1}, {})
        packed[bit.wire] = 1 << i
        if i < WORD_BITS:
            low.append(bit)
    cs.enforce_terms(packed, {ONE_WIRE: 1}, _combine(r, total.pairs))
    low.reverse()
    return [({bit.wire: 1}, (value >> (WORD_BITS - 1 - i)) & 1) for i, bit in enumerate(low)], low


# --- inputs ---
def _bits_in(cs: ConstraintSystem, bits: Sequence[LinearLike], what: str) -> list[Bit]:
    out = []
    for i, x in enumerate(bits):
        lc = cs.as_lc(x)  # refuses a variable of another system and anything not linear
        value = lc.value
        # the hash of non-bits means nothing; the caller constrains them, this refuses early
        if value not in (0, 1):
            raise WitnessError(f"SHA-256 {what} bit {i} must be 0 or 1, got {value}")
        out.append((dict(lc.terms), value))
    return out


def _words(bits: list[Bit]) -> list[Word]:
    return [bits[i : i + WORD_BITS] for i in range(0, len(bits), WORD_BITS)]


def _constant_word(value: int) -> Word:
    return [_const_bit((value >> (WORD_BITS - 1 - i)) & 1) for i in range(WORD_BITS)]


# --- the gadgets ---
def synthesize_sha256_compression(
    cs: ConstraintSystem, state: Sequence[LinearLike] | None, block: Sequence[LinearLike]
) -> list[Variable]:
    """SHA-256's compression function: the 256 bits of the next state (boolean-constrained wires)
    from 256 state bits (None: the standard IV, as constants) and one 512-bit block. Every input bit
    must be boolean already (a variable the caller constrained, or a constant 0/1)."""
    # one compression reads exactly one state and one block
    if state is not None and len(state) != STATE_BITS:
        raise ValueError(f"a SHA-256 state is {STATE_BITS} bits, got {len(state)}")
    if len(block) != BLOCK_BITS:
        raise ValueError(f"a SHA-256 block is {BLOCK_BITS} bits, got {len(block)}")
    with cs.gadget("sha256"):
        initial = [_constant_word(v) for v in IV] if state is None else _words(_bits_in(cs, state, "state"))
        schedule = _schedule(cs, _words(_bits_in(cs, block, "block")))
        a, b, c, d, e, f, g, h = initial
        with cs.gadget("rounds"):
            for t in range(64):
                last = t == 63
                sigma1, ch = _big_sigma1(cs, e), [_ch(cs, *bits) for bits in zip(e, f, g)]
                e_sum = _add(d, h, sigma1, ch, K[t], schedule[t])
                new_e = e_sum if last else _reduce_word(cs, e_sum)
                sigma0, maj = _big_sigma0(cs, a), [_maj(cs, *bits) for bits in zip(a, b, c)]
                # a = T1 + T2 = (e - d) + T2 = e + (NOT d) + 1 - 2^32 + T2; mod 2^32 the -2^32 vanishes
                a_sum = _add(new_e, _not(cs.r, d), 1, sigma0, maj)
                new_a = a_sum if last else _reduce_word(cs, a_sum)
                a, b, c, d, e, f, g, h = new_a, a, b, c, new_e, e, f, g  # type: ignore[assignment]
        with cs.gadget("output"):
            # always decomposed, even a constant: the caller gets wires (see _reduce_word)
            out: list[Variable] = []
            for start, word in zip(initial, (a, b, c, d, e, f, g, h)):
                out.extend(_reduce(cs, _add(start, word))[1])
    return out


def _schedule(cs: ConstraintSystem, block: list[Word]) -> list[Word | _Sum]:
    """W[0..63]; W[62] and W[63] stay sums (they only enter T1, linearly)."""
    w: list[Word | _Sum] = list(block)
    with cs.gadget("schedule"):
        for t in range(16, 64):
            total = _add(_small_sigma1(cs, w[t - 2]), w[t - 7], _small_sigma0(cs, w[t - 15]), w[t - 16])  # type: ignore[arg-type]
            w.append(total if t >= 62 else _reduce_word(cs, total))
    return w


def sha256_padding(n_message_bits: int) -> list[int]:
    """FIPS 180-4's padding of an n-bit message: a 1, zeros to 448 mod 512, the 64-bit length."""
    n_zeros = (BLOCK_BITS - 64 - 1 - n_message_bits) % BLOCK_BITS
    return [1] + [0] * n_zeros + [(n_message_bits >> (63 - i)) & 1 for i in range(64)]


def synthesize_sha256(cs: ConstraintSystem, message_bits: Sequence[LinearLike]) -> list[Variable]:
    """The 256 digest bits of SHA-256 over a message of fixed length (a multiple of 8 bits, each
    bit boolean already); the padding is constant."""
    # a byte string is what hashlib and the EVM's precompile hash
    if len(message_bits) % 8:
        raise ValueError(f"the message must be whole bytes, got {len(message_bits)} bits")
    bits: list[LinearLike] = list(message_bits) + [cs.constant(b) for b in sha256_padding(len(message_bits))]
    state: list[Variable] | None = None
    for start in range(0, len(bits), BLOCK_BITS):
        state = synthesize_sha256_compression(cs, state, bits[start : start + BLOCK_BITS])
    assert state is not None  # the padding makes at least one block
    return state


def word_to_bits(cs: ConstraintSystem, word: LinearLike, n_bits: int) -> list[LinearCombination]:
    """The 256 bits (big-endian) of word's 32-byte encoding, proving word < 2^n_bits (n_bits <= 248):
    n_bits boolean wires and one packing constraint; the top 256 - n_bits bits are constant zeros."""
    # the bits must be a unique decomposition of a field element that also fits in 32 bytes
    if not 0 < n_bits <= MAX_WORD_BITS:
        raise ValueError(f"word_to_bits takes 1 to {MAX_WORD_BITS} bits, got {n_bits}")
    target = cs.as_lc(word)
    value = target.value
    # a value outside the range has no n-bit decomposition
    if value >> n_bits:
        raise WitnessError(f"value {value} does not fit in {n_bits} bits (must be in [0, 2^{n_bits}))")
    r = cs.r
    packed: Terms = {}
    bits: list[LinearCombination] = []
    with cs.gadget("word_to_bits"):
        for i in range(n_bits):
            bit = cs.private((value >> i) & 1)
            cs.enforce_terms({bit.wire: 1}, {ONE_WIRE: 1, bit.wire: r - 1}, {})
            packed[bit.wire] = 1 << i
            bits.append(bit)
        cs.enforce_terms(packed, {ONE_WIRE: 1}, dict(target.terms))
    bits.reverse()
    return [cs.constant(0) for _ in range(STATE_BITS - n_bits)] + bits


def pack_bits(cs: ConstraintSystem, bits: Sequence[LinearLike], n: int) -> LinearCombination:
    """The integer of the last n bits of a big-endian bit list, as a linear combination (free).
    n must leave the packing unique in the field (n < r's bit length)."""
    # more bits than the list has, or than the field holds, would not be the integer of the bits
    if not 0 < n <= len(bits):
        raise ValueError(f"cannot pack the last {n} of {len(bits)} bits")
    if n >= cs.r.bit_length():
        raise ValueError(f"{n} bits do not fit in a field element of {cs.r.bit_length()} bits")
    r = cs.r
    tail = [cs.as_lc(x) for x in bits[len(bits) - n :]]
    return LinearCombination(cs, _combine(r, [(1 << (n - 1 - i), lc.terms) for i, lc in enumerate(tail)]))
