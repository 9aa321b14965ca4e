"""The SHA-256 gadget (prover/circuits/sha256.py): digests equal hashlib's and satisfy the system,
tampered wires do not, and record words enter the hash as their 32-byte big-endian encoding."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prover import gadgets
from prover.circuits.sha256 import pack_bits, synthesize_sha256, synthesize_sha256_compression, word_to_bits
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint, WitnessError, check_assignment

# a regression bound on one compression with a variable state and block (the count is printed by
# benchmarks/sha256_circuit_bench.py); circomlib's sha256compression is ~29k, bellman's ~25.8k
COMPRESSION_BUDGET = 26_250


def message_bits(cs: ConstraintSystem, message: bytes) -> list:
    """The message as boolean-constrained private bits, most significant bit of each byte first."""
    return [gadgets.boolean(cs, (byte >> (7 - i)) & 1) for byte in message for i in range(8)]


def digest_of(bits: list) -> bytes:
    value = 0
    for bit in bits:
        value = (value << 1) | bit.value
    return value.to_bytes(32, "big")


def hash_in_circuit(message: bytes) -> tuple[ConstraintSystem, list]:
    cs = ConstraintSystem()
    return cs, synthesize_sha256(cs, message_bits(cs, message))


def tamper(cs: ConstraintSystem, var, value: int) -> None:
    """A malicious prover's witness: overwrite a private wire after the constraints were built."""
    cs._private_values[-var.wire] = value % cs.r


@pytest.mark.parametrize("length", [0, 1, 55, 56, 64, 128])
def test_digest_is_hashlib_and_satisfies(length: int) -> None:
    # 55 bytes is the longest message padded into one block, 56 the shortest needing two
    message = random.Random(length).randbytes(length)
    cs, digest = hash_in_circuit(message)
    assert digest_of(digest) == hashlib.sha256(message).digest()
    cs.check()
    assert len(digest) == 256 and all(bit.value in (0, 1) for bit in digest)


@settings(max_examples=3, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_random_messages(message: bytes) -> None:
    cs, digest = hash_in_circuit(message)
    assert digest_of(digest) == hashlib.sha256(message).digest()
    assert cs.is_satisfied()


def test_final_layout_is_satisfied() -> None:
    cs, _ = hash_in_circuit(b"abc")
    check_assignment(cs.constraints, cs.witness, cs.r, cs.constraint_gadgets)


@pytest.mark.parametrize("index", [0, 100, 255])
def test_wrong_digest_bit_is_unsatisfied(index: int) -> None:
    cs, digest = hash_in_circuit(b"segment")
    tamper(cs, digest[index], 1 - digest[index].value)
    with pytest.raises(UnsatisfiedConstraint, match="in gadget 'sha256/output'"):
        cs.check()


def test_every_private_wire_is_pinned() -> None:
    # any one wire changed (a block bit, a product, a result or carry bit, a digest bit), whether
    # flipped between 0 and 1 or moved to a random field element, breaks a constraint touching it
    rng = random.Random(7)
    cs = ConstraintSystem()
    block = message_bits(cs, rng.randbytes(64))
    state = message_bits(cs, rng.randbytes(32))
    synthesize_sha256_compression(cs, state, block)
    cs.check()
    touching: dict[int, list[int]] = defaultdict(list)
    for index, row in enumerate(cs._raw_constraints):
        for wire in set().union(*row):
            if wire < 0:
                touching[wire].append(index)

    def satisfied(rows: list[int]) -> bool:
        return all(
            cs.evaluate(cs._raw_constraints[i][0]) * cs.evaluate(cs._raw_constraints[i][1]) % cs.r
            == cs.evaluate(cs._raw_constraints[i][2])
            for i in rows
        )

    for k in range(1, cs.n_private + 1):
        original = cs._private_values[k]
        for changed in (1 - original, original + rng.randrange(2, cs.r - 1)):
            cs._private_values[k] = changed % cs.r
            assert not satisfied(touching[-k]), f"private wire {k} of {cs.n_private} is not pinned"
        cs._private_values[k] = original


def test_compression_cost() -> None:
    rng = random.Random(3)
    cs = ConstraintSystem()
    state = [cs.private(rng.randrange(2)) for _ in range(256)]
    block = [cs.private(rng.randrange(2)) for _ in range(512)]
    synthesize_sha256_compression(cs, state, block)
    assert cs.n_constraints <= COMPRESSION_BUDGET
    # the IV as constants folds part of the first rounds away
    first = ConstraintSystem()
    synthesize_sha256_compression(first, None, [first.private(rng.randrange(2)) for _ in range(512)])
    assert first.n_constraints < cs.n_constraints


def test_constant_padding_block_has_a_free_schedule() -> None:
    # the padding block of a 64-byte message is all constants: its message schedule folds away
    message = random.Random(5).randbytes(64)
    cs, digest = hash_in_circuit(message)
    assert digest_of(digest) == hashlib.sha256(message).digest()
    one = ConstraintSystem()
    synthesize_sha256_compression(one, None, message_bits(one, message))
    schedule = [name for name in cs.constraint_gadgets if name == "sha256/schedule"]
    assert len(schedule) == one.constraint_gadgets.count("sha256/schedule") > 0


def test_all_constant_message_gives_wires() -> None:
    cs = ConstraintSystem()
    digest = synthesize_sha256(cs, [cs.constant(0)] * 512)
    assert digest_of(digest) == hashlib.sha256(bytes(64)).digest()
    assert all(len(bit.terms) == 1 and bit.wire < 0 for bit in digest)
    cs.check()
    tamper(cs, digest[7], 1 - digest[7].value)
    assert not cs.is_satisfied()


def test_invalid_shapes_and_non_bits() -> None:
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match="block is 512 bits"):
        synthesize_sha256_compression(cs, None, [0] * 511)
    with pytest.raises(ValueError, match="state is 256 bits"):
        synthesize_sha256_compression(cs, [0] * 255, [0] * 512)
    with pytest.raises(ValueError, match="whole bytes"):
        synthesize_sha256(cs, [0] * 7)
    with pytest.raises(WitnessError, match="block bit 3 must be 0 or 1, got 2"):
        synthesize_sha256_compression(cs, None, [0, 0, 0, cs.private(2)] + [0] * 508)


@pytest.mark.parametrize("n_bits", [1, 64, 248])
def test_word_to_bits_is_the_32_byte_encoding(n_bits: int) -> None:
    cs = ConstraintSystem()
    value = (1 << n_bits) - 1 - random.Random(n_bits).randrange(1 << (n_bits - 1))
    bits = word_to_bits(cs, cs.private(value), n_bits)
    assert len(bits) == 256
    assert digest_of(bits) == value.to_bytes(32, "big")
    assert cs.n_constraints == n_bits + 1
    cs.check()
    tamper(cs, bits[-1], 1 - bits[-1].value)
    assert not cs.is_satisfied()


@pytest.mark.parametrize("n_bits", [1, 100, 248])
def test_invalid_word_too_large(n_bits: int) -> None:
    cs = ConstraintSystem()
    with pytest.raises(WitnessError, match=f"does not fit in {n_bits} bits"):
        word_to_bits(cs, cs.private(1 << n_bits), n_bits)
    with pytest.raises(WitnessError):
        word_to_bits(cs, cs.private(-1), n_bits)


def test_invalid_word_width() -> None:
    cs = ConstraintSystem()
    for n_bits in (0, 249, 256):
        with pytest.raises(ValueError, match="1 to 248 bits"):
            word_to_bits(cs, cs.private(0), n_bits)


def test_slot_hash_as_the_contract_computes_it() -> None:
    # circuit v3: a slot's two record words, 32 bytes big-endian each, hashed; the public input is
    # the digest's low 253 bits
    rng = random.Random(11)
    words = [rng.randrange(1 << 248), rng.randrange(1 << 248)]
    cs = ConstraintSystem()
    bits = [bit for word in words for bit in word_to_bits(cs, cs.private(word), 248)]
    digest = synthesize_sha256(cs, bits)
    expected = hashlib.sha256(b"".join(w.to_bytes(32, "big") for w in words)).digest()
    public = cs.public_input(int.from_bytes(expected, "big") & ((1 << 253) - 1), "slot_hash")
    gadgets.assert_equal(cs, pack_bits(cs, digest, 253), public)
    cs.check()
    # a claimed hash one off is refused
    cs._public_values[public.wire] += 1
    assert not cs.is_satisfied()


def test_pack_bits() -> None:
    cs = ConstraintSystem()
    bits = [cs.constant(b) for b in (1, 0, 1, 1)] + [cs.private(1), cs.private(0)]
    assert pack_bits(cs, bits, 3).value == 0b110
    assert pack_bits(cs, bits, 6).value == 0b101110
    with pytest.raises(ValueError, match="last 7 of 6"):
        pack_bits(cs, bits, 7)
    with pytest.raises(ValueError, match="do not fit"):
        pack_bits(cs, [0] * 300, 254)
