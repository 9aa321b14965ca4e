"""The EdDSA-Poseidon gadget (prover/circuits/eddsa.py) against verifier.eddsa: valid signatures satisfy it
(ours and circomlibjs's), every tampering an attacker would try leaves it unsatisfiable, enabled = 0 forces
nothing, the key id gadget equals verifier.l2auth.compute_key_id, and one Groth16 proof goes through.

The gadget's internal wires are functions of its inputs (bits are unique under the strict checks, every
slope is a quotient with a nonzero denominator), so the witness it builds is the only one an attacker
has for given inputs: an unsatisfied system here means no proof exists for them. Where an attacker
would also pick internal values (an aliased bit decomposition), the test injects them.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier.groth16 as vg
from prover.circuits import eddsa as C
from prover.r1cs import ConstraintSystem, UnsatisfiedConstraint
from verifier import babyjubjub as B
from verifier import eddsa as E
from verifier import l2auth
from verifier.poseidon import poseidon

ROOT = Path(__file__).resolve().parents[1]
P, L = B.P, B.SUBORDER
HAS_NODE = (ROOT / "node_modules" / "circomlibjs").is_dir() and shutil.which("node") is not None


SCHEDULES = list(C.VARIABLE_BASE_SCHEDULES)
each_schedule = pytest.mark.parametrize("schedule", SCHEDULES)


def build(enabled: int, a: tuple[int, int], r8: tuple[int, int], s: int, msg: int, schedule: str = "left_to_right") -> ConstraintSystem:
    cs = ConstraintSystem()
    C.synthesize_eddsa_verify(cs, *(cs.private(v) for v in (enabled, a[0], a[1], r8[0], r8[1], s, msg)), schedule=schedule)
    return cs


def failing_gadget(cs: ConstraintSystem) -> str | None:
    """The gadget of the first unsatisfied constraint, None when the witness satisfies every one."""
    try:
        cs.check()
    except UnsatisfiedConstraint as e:
        return e.gadget
    return None


def failing_gadgets(cs: ConstraintSystem) -> set[str]:
    """Every gadget with an unsatisfied constraint."""
    witness, r = cs.witness, cs.r
    value = lambda lc: sum(k * witness[i] for i, k in lc.items()) % r  # noqa: E731
    return {gadget for (a, b, c), gadget in zip(cs.constraints, cs.constraint_gadgets) if value(a) * value(b) % r != value(c)}


def native_verify(msg: int, r8: tuple[int, int], s: int, a: tuple[int, int]) -> bool:
    try:
        return E.verify(msg, E.Signature(r8, s), a)
    except E.InvalidSignature:
        return False


def sign_with_scalar(a_scalar: int, key: tuple[int, int], msg: int, nonce: int, h_offset: int = 0) -> E.Signature:
    """A signature by the secret a (key = a * Base8 unless the test tampers with it): R8 = nonce * Base8,
    S = nonce + 8 (h + h_offset) a, h hashed with `key` (an attacker's own arithmetic)."""
    r8 = B.babyjub.mul_base(nonce)
    h = E.compute_message_hash(r8, key, msg)
    return E.Signature(r8, (nonce + 8 * (h + h_offset) * a_scalar) % L)


@pytest.fixture(scope="module")
def signed() -> tuple[bytes, tuple[int, int], int, E.Signature]:
    prv = bytes(range(1, 33))
    msg = 0x1234_5678_9ABC_DEF0 << 100
    return prv, E.prv2pub(prv), msg, E.sign(prv, msg)


@pytest.fixture(scope="module", params=SCHEDULES)
def valid_cs(request, signed) -> tuple[str, ConstraintSystem]:
    _, a, msg, sig = signed
    return request.param, build(1, a, sig.R8, sig.S, msg, request.param)


# --- valid signatures ---------------------------------------------------------------------------------------


def test_valid_signature_satisfies(valid_cs: tuple[str, ConstraintSystem]) -> None:
    valid_cs[1].check()


def test_constraint_count_is_fixed(valid_cs: tuple[str, ConstraintSystem]) -> None:
    schedule, cs = valid_cs
    assert cs.n_constraints == C.count_eddsa_constraints(schedule) < 4_217  # circomlib's verifier at --O2
    assert C.count_eddsa_constraints("left_to_right") < C.count_eddsa_constraints("right_to_left")
    assert C.count_key_id_constraints() < 700


def test_unknown_schedule() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'gpu'; choose one of: left_to_right, right_to_left"):
        build(1, B.IDENTITY, B.IDENTITY, 0, 0, "gpu")


def variable_base(schedule: str, h: int) -> tuple[ConstraintSystem, tuple[int, int]]:
    """h * Q through one schedule, for Q = 0xC0FFEE * Base8: the system and the Edwards result."""
    q = B.babyjub.mul_base(0xC0FFEE)
    cs = ConstraintSystem()
    q_e = tuple(C._lc(cs, cs.private(c)) for c in q)
    q_m = C._edwards_to_montgomery(cs, q_e)
    bits = C._strict_bits(cs, C._lc(cs, cs.private(h)), C.H_BITS, P - 1)
    x, y = C.VARIABLE_BASE_SCHEDULES[schedule](cs, q_e, q_m, bits)
    return cs, (x.value, y.value)


@each_schedule
@pytest.mark.parametrize("h", [*range(9), 12345, (1 << 100) + 7, L - 2, L - 1, L, L + 1, L + 2, 2 * L - 1, 2 * L + 1, 7 * L, P - 1, 0x2F3A_9D41 << 200])
def test_variable_base_schedules_match_native(schedule: str, h: int) -> None:
    """h * Q for every kind of scalar: tiny (the prefixes a left-to-right ladder would start with), 0 and
    around multiples of l (where incomplete formulas would meet the identity or a doubling), the top
    of the field. The schedules have no exceptional scalar."""
    cs, point = variable_base(schedule, h)
    cs.check()
    assert point == B.reference.mul(B.babyjub.mul_base(0xC0FFEE), h)


@each_schedule
@settings(max_examples=4, deadline=None)
@given(prv=st.binary(min_size=32, max_size=32), msg=st.integers(0, P - 1))
def test_random_valid_signatures_satisfy(schedule: str, prv: bytes, msg: int) -> None:
    a, sig = E.prv2pub(prv), E.sign(prv, msg)
    assert failing_gadget(build(1, a, sig.R8, sig.S, msg, schedule)) is None


@pytest.mark.interop
@pytest.mark.skipif(not HAS_NODE, reason="needs node and circomlibjs (npm ci)")
def test_circomlibjs_signature_satisfies() -> None:
    from test_eddsa_interop import as_point, run_circomlibjs

    prv, msg = bytes(range(100, 132)), 987654321987654321
    out = run_circomlibjs(pub=[prv.hex()], sign=[[prv.hex(), str(msg)]])
    a, sig = as_point(out["pub"][0]), out["sign"][0]
    assert failing_gadget(build(1, a, as_point(sig["R8"]), int(sig["S"]), msg)) is None


@each_schedule
def test_identity_nonce_signature_satisfies(schedule: str, ) -> None:
    """R8 = identity is a valid signature (verify accepts it): the gadget must prove it too, or a
    trader could sign something the sequencer accepts and the prover cannot prove."""
    a_scalar = 123456789
    key = B.babyjub.mul_base(a_scalar)
    sig = sign_with_scalar(a_scalar, key, 5, nonce=0)
    assert sig.R8 == B.IDENTITY and native_verify(5, sig.R8, sig.S, key)
    assert failing_gadget(build(1, key, sig.R8, sig.S, 5, schedule)) is None


# --- invalid signatures: each refused, and by the rule that refuses it --------------------------------------


@each_schedule
def test_invalid_wrong_message(schedule: str, signed) -> None:
    _, a, msg, sig = signed
    assert failing_gadget(build(1, a, sig.R8, sig.S, msg + 1, schedule)) == "eddsa/equation"


@each_schedule
def test_invalid_wrong_s(schedule: str, signed) -> None:
    _, a, msg, sig = signed
    assert failing_gadget(build(1, a, sig.R8, (sig.S + 1) % L, msg, schedule)) == "eddsa/equation"


@each_schedule
def test_invalid_malleable_twin_s_plus_l(schedule: str, ) -> None:
    """S + l satisfies the curve equation (l * Base8 is the identity) and fits in 251 bits: only S < l refuses it."""
    prv = bytes(32 * [7])
    for msg in range(50):
        sig = E.sign(prv, msg)
        if sig.S + L < 1 << C.S_BITS:
            break
    a = E.prv2pub(prv)
    assert not native_verify(msg, sig.R8, sig.S + L, a)
    assert failing_gadgets(build(1, a, sig.R8, sig.S + L, msg, schedule)) == {"eddsa/s_bits/at_most"}


def test_invalid_s_too_wide(signed) -> None:
    _, a, msg, sig = signed
    assert failing_gadget(build(1, a, sig.R8, sig.S + (1 << C.S_BITS), msg)) == "eddsa/s_bits"


@each_schedule
def test_invalid_r8_off_the_curve(schedule: str, signed) -> None:
    _, a, msg, sig = signed
    off = (sig.R8[0], (sig.R8[1] + 1) % P)
    assert not B.is_on_curve(off)
    assert failing_gadget(build(1, a, off, sig.S, msg, schedule)) == "eddsa/equation"


def test_invalid_r8_replaced(signed) -> None:
    _, a, msg, sig = signed
    assert failing_gadget(build(1, a, B.babyjub.mul_base(99), sig.S, msg)) == "eddsa/equation"


@each_schedule
def test_invalid_key_replaced(schedule: str, signed) -> None:
    _, _, msg, sig = signed
    other = E.prv2pub(bytes(32 * [3]))
    assert failing_gadget(build(1, other, sig.R8, sig.S, msg, schedule)) == "eddsa/equation"


def small_order_points() -> list[tuple[int, int]]:
    t8 = B.reference.mul(B.GENERATOR, L)  # order 8
    return [B.reference.mul(t8, k) for k in range(8)]


@pytest.mark.parametrize("k", range(8))
def test_invalid_small_order_key(k: int) -> None:
    """For A of order dividing 8, 8A is the identity and S = nonce makes circomlib's equation hold for
    any message: refused (8A has no Montgomery form; and A != 8B for the identity's sake too)."""
    key = small_order_points()[k]
    nonce = 424242
    sig = E.Signature(B.babyjub.mul_base(nonce), nonce)
    assert B.babyjub.add(B.babyjub.mul_base(sig.S), B.neg(sig.R8)) == B.babyjub.mul(key, 8)  # the equation holds
    assert failing_gadget(build(1, key, sig.R8, sig.S, 77)) == "eddsa/key"


def test_invalid_key_with_torsion() -> None:
    """A + T (T of order 8) with a signature whose equation holds (8(A + T) = 8A): verify() refuses
    the key (not in the subgroup), so must the gadget."""
    a_scalar = 987654321
    key = B.babyjub.add(B.babyjub.mul_base(a_scalar), small_order_points()[1])
    sig = sign_with_scalar(a_scalar, key, 9, nonce=1111)
    h = E.compute_message_hash(sig.R8, key, 9)
    assert B.babyjub.mul_base(sig.S) == B.babyjub.add(sig.R8, B.babyjub.mul(key, 8 * h))  # circomlib would accept
    assert not native_verify(9, sig.R8, sig.S, key)
    assert failing_gadget(build(1, key, sig.R8, sig.S, 9)) == "eddsa/key"


def test_invalid_key_off_the_curve(signed) -> None:
    _, a, msg, sig = signed
    assert failing_gadget(build(1, (a[0], a[1] + 1), sig.R8, sig.S, msg)) == "eddsa/key"


@each_schedule
def test_invalid_hash_alias(schedule: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker decomposing h + r (254 bits when h < 2^254 - r) and signing for that scalar: the equation
    then holds and only the strict comparison with r - 1 refuses it."""
    a_scalar = 55555
    key = B.babyjub.mul_base(a_scalar)
    for nonce in range(1, 100):
        r8 = B.babyjub.mul_base(nonce)
        alias = E.compute_message_hash(r8, key, 3) + P
        if alias < 1 << C.H_BITS and alias + C.VARIABLE_OFFSET < 1 << (C.H_BITS + 1):
            break
    sig = sign_with_scalar(a_scalar, key, 3, nonce, h_offset=P)
    original = C._strict_bits

    def aliased(cs, x, n_bits, max_value, value=None):
        return original(cs, x, n_bits, max_value, x.value + P if max_value == P - 1 else value)

    monkeypatch.setattr(C, "_strict_bits", aliased)
    assert failing_gadgets(build(1, key, sig.R8, sig.S, 3, schedule)) == {"eddsa/h_bits/at_most"}


# --- enabled = 0 ----------------------------------------------------------------------------------------------


@each_schedule
def test_disabled_identity_witness_satisfies(schedule: str, ) -> None:
    assert failing_gadget(build(0, B.IDENTITY, B.IDENTITY, 0, 12345, schedule)) is None


@each_schedule
@settings(max_examples=5, deadline=None)
@given(values=st.lists(st.integers(0, P - 1), min_size=6, max_size=6))
def test_disabled_forces_nothing(schedule: str, values: list[int]) -> None:
    ax, ay, rx, ry, s, msg = values
    assert failing_gadget(build(0, (ax, ay), (rx, ry), s, msg, schedule)) is None


def test_disabled_valid_or_invalid_signature_satisfies(signed) -> None:
    _, a, msg, sig = signed
    assert failing_gadget(build(0, a, sig.R8, sig.S, msg)) is None
    assert failing_gadget(build(0, a, sig.R8, sig.S + 1, msg + 1)) is None


# --- differential: the gadget agrees with verifier.eddsa.verify --------------------------------------------------


TAMPERINGS = ("none", "msg", "s+1", "s+l", "r8", "key", "r8-off-curve", "key-torsion")


def tamper(kind: str, rng: random.Random, a, msg, sig) -> tuple:
    r8, s = sig.R8, sig.S
    if kind == "msg":
        msg = (msg + rng.randrange(1, 1000)) % P
    elif kind == "s+1":
        s = (s + 1) % L
    elif kind == "s+l":
        s += L
    elif kind == "r8":
        r8 = B.babyjub.mul_base(rng.randrange(1, L))
    elif kind == "key":
        a = B.babyjub.mul_base(rng.randrange(1, L))
    elif kind == "r8-off-curve":
        r8 = (r8[0], (r8[1] + 1) % P)
    elif kind == "key-torsion":
        a = B.babyjub.add(a, small_order_points()[4])
    return a, r8, s, msg


@each_schedule
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), kind=st.sampled_from(TAMPERINGS))
def test_satisfiable_iff_verify_accepts(schedule: str, seed: int, kind: str) -> None:
    rng = random.Random(seed)
    prv = rng.randbytes(32)
    msg = rng.randrange(P)
    a, r8, s, msg = tamper(kind, rng, E.prv2pub(prv), msg, E.sign(prv, msg))
    assert (failing_gadget(build(1, a, r8, s, msg, schedule)) is None) == native_verify(msg, r8, s, a)


# --- the bit decomposition ------------------------------------------------------------------------------------------


def test_to_bits_at_most_exhaustive() -> None:
    bound = 0b1011001
    for value in range(1 << 7):
        cs = ConstraintSystem()
        bits = C.to_bits_at_most(cs, cs.private(value), 7, bound)
        assert [b.value for b in bits] == [(value >> i) & 1 for i in range(7)]
        assert cs.is_satisfied() == (value <= bound), value


def test_to_bits_at_most_refuses_an_alias() -> None:
    cs = ConstraintSystem()
    C.to_bits_at_most(cs, cs.private(5), C.H_BITS, P - 1, value=5 + P)
    assert failing_gadget(cs) == "at_most"


@pytest.mark.parametrize(("n_bits", "bound"), [(4, 15), (4, 0), (255, P), (255, 1 << 254)])
def test_invalid_bound(n_bits: int, bound: int) -> None:
    cs = ConstraintSystem()
    with pytest.raises(ValueError, match="max_value must be in"):
        C.to_bits_at_most(cs, cs.private(1), n_bits, bound)


def test_to_bits_at_most_wider_than_the_bound() -> None:
    """Bits above the bound's top bit are forced to 0."""
    for value in range(1 << 8):
        cs = ConstraintSystem()
        C.to_bits_at_most(cs, cs.private(value), 8, 5)
        assert cs.is_satisfied() == (value <= 5), value


# --- key id -------------------------------------------------------------------------------------------------------------


@settings(max_examples=4, deadline=None)
@given(prv=st.binary(min_size=32, max_size=32))
def test_key_id_matches_l2auth(prv: bytes) -> None:
    a = E.prv2pub(prv)
    cs = ConstraintSystem()
    key_id = C.synthesize_key_id(cs, cs.private(a[0]), cs.private(a[1]))
    cs.check()
    assert key_id.value == l2auth.compute_key_id(a)
    assert cs.n_constraints == C.count_key_id_constraints()


def test_key_id_alias_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decomposing Poseidon(A) + r would give other low 248 bits, another account's key id."""
    for k in range(1, 100):
        a = B.babyjub.mul_base(k)
        if poseidon(list(a)) + P < 1 << C.H_BITS:
            break
    original = C._strict_bits
    monkeypatch.setattr(C, "_strict_bits", lambda cs, x, n, m, value=None: original(cs, x, n, m, x.value + P))
    cs = ConstraintSystem()
    key_id = C.synthesize_key_id(cs, cs.private(a[0]), cs.private(a[1]))
    assert key_id.value != l2auth.compute_key_id(a)
    assert failing_gadgets(cs) == {"key_id/h_bits/at_most"}


# --- one Groth16 proof -------------------------------------------------------------------------------------------------


def test_groth16_proof_of_one_verification(signed) -> None:
    from prover.groth16 import prove
    from prover.setup import setup

    _, a, msg, sig = signed
    cs = ConstraintSystem()
    public_msg = cs.public_input(msg, "msg")
    wires = [cs.private(v) for v in (1, a[0], a[1], sig.R8[0], sig.R8[1], sig.S)]
    C.synthesize_eddsa_verify(cs, *wires, public_msg)
    pk = setup(cs, seed="eddsa-gadget")
    proof = prove(pk, cs, reproducible_seed=1)
    pvk = vg.prepare_verifying_key(pk.vk)
    assert vg.verify_proof(pvk, proof, [msg])
    assert not vg.verify_proof(pvk, proof, [msg + 1])
