"""BN254 (Ethereum's alt_bn128) through mcl, the C++ pairing library bundled by `mclbn256` (MIT/BSD).

mclbn256 loads mcl and initialises it on curve id 0, which is NOT Ethereum's BN254; `load()`
re-initialises it on BN_SNARK1 (mcl's name for alt_bn128) and then checks, before anything uses
it, that mcl's field and group orders are py_ecc's, that py_ecc's generators are valid mcl points,
that a scalar multiplication in G1 and in G2 equals py_ecc's, and that e(2 G1, 3 G2) = e(6 G1, G2).
If mclbn256 is missing or a check fails, `load()` raises `MclUnavailable` and callers fall back to
the pure-Python backend.

Points cross the boundary as raw ints, in the forms `prover.ec` uses: G1 affine (x, y), G2 affine
((x0, x1), (y0, y1)) with x0 the real part, None for the identity. Many points are converted at
once by writing mcl's in-memory form directly: a coordinate is its Montgomery form x * 2^256 mod q
as four little-endian 64-bit limbs, a point is Jacobian (x, y, z) with z = 1 for affine input, and
a scalar is its Montgomery form mod r. `load()` checks this layout against mcl's own string parser,
so a different build of mcl fails the check instead of computing garbage.

Scalars given to mcl are reduced field elements (callers check they lie in [0, r)).
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from py_ecc import optimized_bn128 as bn

Affine = Optional[tuple[Any, Any]]

_LIMBS = 4  # 64-bit limbs per Fp / Fr element (mclbn256's MCLBN_FP_UNIT_SIZE)
G1Struct = ctypes.c_uint64 * (3 * _LIMBS)
G2Struct = ctypes.c_uint64 * (6 * _LIMBS)
FrStruct = ctypes.c_uint64 * _LIMBS
GTStruct = ctypes.c_uint64 * (12 * _LIMBS)
_MSM_CHUNK = {G1Struct: 1 << 17, G2Struct: 1 << 16}  # points per mulVec call: see Mcl._msm
_MCL_BN_SNARK1 = 4  # mcl's curve id for alt_bn128 (include/mcl/curve_type.h); checked by `load`
_COORD_BYTES = 8 * _LIMBS


class MclUnavailable(RuntimeError):
    """mclbn256 is not installed, or its mcl does not behave as Ethereum's BN254 here."""


@dataclass(frozen=True)
class Mcl:
    """The loaded library and the constants of the Montgomery forms."""

    lib: Any
    q: int
    r: int
    mont_q: int  # 2^256 mod q
    mont_r: int  # 2^256 mod r
    mont_q_inv: int
    threads: int  # threads for one MSM (mulVecMT); 1 = the caller's thread only

    # --- conversions: raw ints <-> mcl's memory ---
    def fq_bytes(self, x: int) -> bytes:
        return (x * self.mont_q % self.q).to_bytes(_COORD_BYTES, "little")

    def g1_array(self, points: Sequence[Affine]) -> Any:
        """An mcl G1 array from affine raw-int points (None = identity: all-zero, z = 0)."""
        q, m = self.q, self.mont_q
        one = m.to_bytes(_COORD_BYTES, "little")
        zero = bytes(3 * _COORD_BYTES)
        data = b"".join(
            zero if p is None else (p[0] * m % q).to_bytes(_COORD_BYTES, "little") + (p[1] * m % q).to_bytes(_COORD_BYTES, "little") + one
            for p in points
        )
        return (G1Struct * len(points)).from_buffer_copy(data) if points else (G1Struct * 0)()

    def g2_array(self, points: Sequence[Affine]) -> Any:
        """An mcl G2 array from affine raw-int points ((x0, x1), (y0, y1)); None = identity."""
        q, m = self.q, self.mont_q
        one = m.to_bytes(_COORD_BYTES, "little") + bytes(_COORD_BYTES)
        zero = bytes(6 * _COORD_BYTES)

        def fq2(a: tuple[int, int]) -> bytes:
            return (a[0] * m % q).to_bytes(_COORD_BYTES, "little") + (a[1] * m % q).to_bytes(_COORD_BYTES, "little")

        data = b"".join(zero if p is None else fq2(p[0]) + fq2(p[1]) + one for p in points)
        return (G2Struct * len(points)).from_buffer_copy(data) if points else (G2Struct * 0)()

    def fr_array(self, scalars: Sequence[int]) -> Any:
        """An mcl Fr array from ints in [0, r) (unchecked here: callers validate)."""
        r, m = self.r, self.mont_r
        data = b"".join((k * m % r).to_bytes(_COORD_BYTES, "little") for k in scalars)
        return (FrStruct * len(scalars)).from_buffer_copy(data) if scalars else (FrStruct * 0)()

    def _coords(self, raw: bytes, count: int) -> list[int]:
        q, inv = self.q, self.mont_q_inv
        return [int.from_bytes(raw[i * _COORD_BYTES:(i + 1) * _COORD_BYTES], "little") * inv % q for i in range(count)]

    def g1_affine(self, point: Any) -> Affine:
        """Affine raw ints of one mcl G1 point."""
        if self.lib.mclBnG1_isZero(ctypes.byref(point)):
            return None
        norm = G1Struct()
        self.lib.mclBnG1_normalize(ctypes.byref(norm), ctypes.byref(point))
        x, y = self._coords(bytes(norm), 2)
        return (x, y)

    def g2_affine(self, point: Any) -> Affine:
        if self.lib.mclBnG2_isZero(ctypes.byref(point)):
            return None
        norm = G2Struct()
        self.lib.mclBnG2_normalize(ctypes.byref(norm), ctypes.byref(point))
        x0, x1, y0, y1 = self._coords(bytes(norm), 4)
        return ((x0, x1), (y0, y1))

    # --- group operations ---
    def msm_g1(self, bases: Any, scalars: Sequence[int]) -> Affine:
        """sum k_i P_i over a prepared G1 array (`g1_array`) and scalars in [0, r)."""
        return self.g1_affine(self._msm(bases, scalars, self.lib.mclBnG1_mulVec, self.lib.mclBnG1_mulVecMT, G1Struct))

    def msm_g2(self, bases: Any, scalars: Sequence[int]) -> Affine:
        return self.g2_affine(self._msm(bases, scalars, self.lib.mclBnG2_mulVec, self.lib.mclBnG2_mulVecMT, G2Struct))

    def _msm(self, bases: Any, scalars: Sequence[int], mul_vec: Any, mul_vec_mt: Any, struct: type) -> Any:
        # one scalar per base: mcl reads n entries of both arrays
        if len(bases) != len(scalars):
            raise ValueError(f"MSM needs one scalar per point: {len(bases)} points, {len(scalars)} scalars")
        out = struct()
        if not scalars:
            return out  # zero-initialised: the identity
        frs = self.fr_array(scalars)
        add = self.lib.mclBnG1_add if struct is G1Struct else self.lib.mclBnG2_add
        # mcl's mulVec keeps tables on the stack, in proportion to n: 2^17 G2 points overflow a
        # default 8 MB stack (a segfault, measured). So at most _MSM_CHUNK[struct] points per call.
        chunk = _MSM_CHUNK[struct]
        part = struct()
        point_size, scalar_size = ctypes.sizeof(struct), ctypes.sizeof(FrStruct)
        for start in range(0, len(scalars), chunk):
            count = min(chunk, len(scalars) - start)
            p_bases = ctypes.byref(bases, start * point_size)
            p_frs = ctypes.byref(frs, start * scalar_size)
            target = out if start == 0 else part
            if self.threads > 1:
                mul_vec_mt(ctypes.byref(target), p_bases, p_frs, ctypes.c_size_t(count), ctypes.c_size_t(self.threads))
            else:
                mul_vec(ctypes.byref(target), p_bases, p_frs, ctypes.c_size_t(count))
            if start:
                add(ctypes.byref(out), ctypes.byref(out), ctypes.byref(part))
        return out

    def mul_each(self, group: int, base: Affine, scalars: Sequence[int]) -> list[Affine]:
        """[k * base for k in scalars], one mcl scalar multiplication each (scalars in [0, r)).

        The setup's fixed-base products when prover/_native.c is not built (which batches them)."""
        # the identity has no multiples worth computing (and the reference refuses it too)
        if base is None:
            raise ValueError("fixed-base multiplication needs a base point other than the identity")
        lib = self.lib
        mul, struct, to_affine = (lib.mclBnG1_mul, G1Struct, self.g1_affine) if group == 1 else (lib.mclBnG2_mul, G2Struct, self.g2_affine)
        point = (self.g1_array if group == 1 else self.g2_array)([base])[0]
        frs = self.fr_array(scalars)
        out = struct()
        points = []
        for k in range(len(scalars)):
            mul(ctypes.byref(out), ctypes.byref(point), ctypes.byref(frs[k]))
            points.append(to_affine(out))
        return points

    def is_in_subgroup_g1(self, point: Affine) -> bool:
        """On the curve and of order r (mcl's isValidOrder)."""
        return point is None or bool(self.lib.mclBnG1_isValidOrder(ctypes.byref(self.g1_array([point])[0])))

    def is_in_subgroup_g2(self, point: Affine) -> bool:
        return point is None or bool(self.lib.mclBnG2_isValidOrder(ctypes.byref(self.g2_array([point])[0])))

    # --- pairings ---
    def pairing_product(self, g1: Sequence[Affine], g2: Sequence[Affine]) -> "MclGT":
        """prod_i e(P_i, Q_i): Miller loops sharing one accumulator, one final exponentiation."""
        # one G2 point per G1 point
        if len(g1) != len(g2):
            raise ValueError(f"pairing product needs pairs: {len(g1)} G1 points, {len(g2)} G2 points")
        kept = [(p, q) for p, q in zip(g1, g2) if p is not None and q is not None]  # e(O, Q) = e(P, O) = 1
        f = GTStruct()
        if not kept:
            self.lib.mclBnGT_setInt32(ctypes.byref(f), 1)
            return MclGT(self, f)
        ps = self.g1_array([p for p, _ in kept])
        qs = self.g2_array([q for _, q in kept])
        self.lib.mclBn_millerLoopVec(ctypes.byref(f), ps, qs, ctypes.c_size_t(len(kept)))
        e = GTStruct()
        self.lib.mclBn_finalExp(ctypes.byref(e), ctypes.byref(f))
        return MclGT(self, e)


class MclGT:
    """An element of GT in mcl's representation: compares and exponentiates, like py_ecc's FQ12."""

    __slots__ = ("mcl", "value")

    def __init__(self, mcl: Mcl, value: Any):
        self.mcl = mcl
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MclGT):
            return NotImplemented
        return bool(self.mcl.lib.mclBnGT_isEqual(ctypes.byref(self.value), ctypes.byref(other.value)))

    def __hash__(self) -> int:
        return hash(bytes(self.value))

    def __mul__(self, other: "MclGT") -> "MclGT":
        out = GTStruct()
        self.mcl.lib.mclBnGT_mul(ctypes.byref(out), ctypes.byref(self.value), ctypes.byref(other.value))
        return MclGT(self.mcl, out)

    def __pow__(self, exponent: int) -> "MclGT":
        # exponents are scalars mod r: GT has order r
        out = GTStruct()
        frs = self.mcl.fr_array([exponent % self.mcl.r])
        self.mcl.lib.mclBnGT_pow(ctypes.byref(out), ctypes.byref(self.value), ctypes.byref(frs[0]))
        return MclGT(self.mcl, out)

    def is_one(self) -> bool:
        return bool(self.mcl.lib.mclBnGT_isOne(ctypes.byref(self.value)))


_LOADED: Mcl | None = None
_ERROR: str | None = None
_LOCK = threading.Lock()


def get_default_threads() -> int:
    """Threads per MSM: ROLLUP_NATIVE_THREADS, else 1 (a proving worker is one process per core)."""
    value = os.environ.get("ROLLUP_NATIVE_THREADS", "1")
    try:
        threads = int(value)
    except ValueError:
        raise MclUnavailable(f"ROLLUP_NATIVE_THREADS must be an integer, got {value!r}") from None
    # at least the caller's own thread
    if threads < 1:
        raise MclUnavailable(f"ROLLUP_NATIVE_THREADS must be at least 1, got {threads}")
    return threads


def load() -> Mcl:
    """mcl on Ethereum's BN254, checked against py_ecc (once per process); MclUnavailable if not."""
    global _LOADED, _ERROR
    with _LOCK:
        if _LOADED is not None:
            return _LOADED
        if _ERROR is not None:
            raise MclUnavailable(_ERROR)
        try:
            _LOADED = _load()
        except MclUnavailable as exc:
            _ERROR = str(exc)
            raise
        return _LOADED


def is_available() -> bool:
    try:
        load()
    except MclUnavailable:
        return False
    return True


def _load() -> Mcl:
    try:
        import mclbn256.mclbn256 as binding  # loads the bundled library (on the wrong curve)
    except Exception as exc:  # noqa: BLE001 - an ImportError or a loader failure: either way, no mcl
        raise MclUnavailable(f"mclbn256 is not importable: {type(exc).__name__}: {exc}") from exc
    lib = binding.lib
    # the library's structs must be the sizes this module writes
    if binding.MCLBN_FP_UNIT_SIZE != _LIMBS or binding.MCLBN_FR_UNIT_SIZE != _LIMBS:
        raise MclUnavailable("mclbn256 was built with another limb count than 4 x 64 bits")
    if lib.mclBn_init(_MCL_BN_SNARK1, binding.MCLBN_COMPILED_TIME_VAR) != 0:
        raise MclUnavailable("mcl refused to initialise on BN_SNARK1 (alt_bn128)")
    q, r = bn.field_modulus, bn.curve_order
    buf = ctypes.create_string_buffer(128)
    for name, getter, want in (("field", lib.mclBn_getFieldOrder, q), ("group", lib.mclBn_getCurveOrder, r)):
        size = getter(buf, ctypes.c_size_t(len(buf)))
        # the curve mcl now computes on is py_ecc's
        if size <= 0 or int(buf.raw[:size].decode()) != want:
            raise MclUnavailable(f"mcl's {name} order is not py_ecc's BN254 {name} order")
    mont_q = pow(2, 64 * _LIMBS, q)
    mcl = Mcl(lib=lib, q=q, r=r, mont_q=mont_q, mont_r=pow(2, 64 * _LIMBS, r), mont_q_inv=pow(mont_q, -1, q),
              threads=get_default_threads())
    _self_check(mcl)
    return mcl


def _self_check(mcl: Mcl) -> None:
    """Refuse an mcl whose memory layout, twist or pairing differs from py_ecc's."""
    lib = mcl.lib
    g1 = _affine_g1(bn.G1)
    g2 = _affine_g2(bn.G2)
    parsed1, parsed2 = G1Struct(), G2Struct()
    text1 = f"1 {g1[0]} {g1[1]}".encode()
    text2 = f"1 {g2[0][0]} {g2[0][1]} {g2[1][0]} {g2[1][1]}".encode()
    # mcl's own parser accepts py_ecc's generators (G2: x0 real part, on mcl's twist)
    if lib.mclBnG1_setStr(ctypes.byref(parsed1), text1, ctypes.c_size_t(len(text1)), 10) != 0 or \
            lib.mclBnG2_setStr(ctypes.byref(parsed2), text2, ctypes.c_size_t(len(text2)), 10) != 0:
        raise MclUnavailable("mcl rejects py_ecc's BN254 generators")
    # our direct memory writes give the points mcl's parser gives
    if not lib.mclBnG1_isEqual(ctypes.byref(parsed1), ctypes.byref(mcl.g1_array([g1])[0])) or \
            not lib.mclBnG2_isEqual(ctypes.byref(parsed2), ctypes.byref(mcl.g2_array([g2])[0])):
        raise MclUnavailable("mcl's in-memory point layout is not the Montgomery form this module writes")
    scalar = 0x1F2E3D4C5B6A79880123456789ABCDEF0FEDCBA9876543210 % mcl.r  # any full-width scalar
    # a scalar multiplication in each group equals py_ecc's
    if mcl.msm_g1(mcl.g1_array([g1]), [scalar]) != _affine_g1(bn.multiply(bn.G1, scalar)):
        raise MclUnavailable("mcl's G1 scalar multiplication differs from py_ecc's")
    if mcl.msm_g2(mcl.g2_array([g2]), [scalar]) != _affine_g2(bn.multiply(bn.G2, scalar)):
        raise MclUnavailable("mcl's G2 scalar multiplication differs from py_ecc's")
    # bilinearity on the generators: e(2 G1, 3 G2) e(-6 G1, G2) == 1, and not with -5
    two, six, five = (_affine_g1(bn.multiply(bn.G1, k)) for k in (2, 6, 5))
    three = _affine_g2(bn.multiply(bn.G2, 3))
    neg = lambda p: (p[0], -p[1] % mcl.q)  # noqa: E731
    if not mcl.pairing_product([two, neg(six)], [three, g2]).is_one() or mcl.pairing_product([two, neg(five)], [three, g2]).is_one():
        raise MclUnavailable("mcl's pairing is not bilinear on py_ecc's generators")


def _affine_g1(point: Any) -> tuple[int, int]:
    x, y = bn.normalize(point)
    return (int(x), int(y))


def _affine_g2(point: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    x, y = bn.normalize(point)
    return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))
