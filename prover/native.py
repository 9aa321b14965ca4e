"""The optional C extension (prover/_native.c) behind Python APIs: the QAP's NTTs, fixed-base batches on mcl.

`pip install -e .` builds the extension when a C compiler is there; if it is missing or fails to
build, `is_available()` is False and callers use the pure-Python code (prover/qap.py,
prover/ec.py), which stays the reference the extension is tested against (tests/test_native.py).

Every constant the C code needs (moduli, Montgomery constants, roots of unity, mcl's function
addresses) is computed here from py_ecc's values and prover/qap.py's domain, never typed in C.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any, Sequence

from py_ecc import optimized_bn128 as bn

from prover.ec import Affine
from prover.qap import Domain

try:
    from prover import _native  # type: ignore[attr-defined]
except ImportError as exc:  # not built: no compiler at install time, or another platform
    _native = None
    _IMPORT_ERROR = f"prover._native is not built ({exc}); reinstall with a C compiler (pip install -e .)"
else:
    _IMPORT_ERROR = ""

_BYTES = 32  # the extension's field elements: four 64-bit limbs
_FIXED_BASE_CHUNK = 1 << 18  # scalars per C call of the setup's fixed-base products
_WINDOW_MAX = 12  # fixed-base table rows of 2^12 points: 0.4 MB per window in G1, little beyond the L2 cache


class NativeUnavailable(RuntimeError):
    """The C extension was not built here."""


def is_available() -> bool:
    return _native is not None


def get_module() -> Any:
    if _native is None:
        raise NativeUnavailable(_IMPORT_ERROR)
    return _native


@lru_cache(maxsize=8)
def _field(modulus: int) -> tuple[bytes, bytes]:
    """(modulus, 2^512 mod modulus) as the extension takes them."""
    return _le(modulus), _le(pow(2, 2 * 8 * _BYTES, modulus))


def _le(x: int) -> bytes:
    return x.to_bytes(_BYTES, "little")


def _pack(values: Sequence[int]) -> bytes:
    return b"".join(x.to_bytes(_BYTES, "little") for x in values)


def _unpack(raw: bytes, count: int) -> list[int]:
    view = memoryview(raw)
    return [int.from_bytes(view[i * _BYTES:(i + 1) * _BYTES], "little") for i in range(count)]


def compute_h_from_evaluations(a: Sequence[int], b: Sequence[int], c: Sequence[int], domain: Domain) -> list[int]:
    """prover.qap.compute_h_from_evaluations in C: h = (A B - C) / Z, coefficients h_0 .. h_{m-2}."""
    module = get_module()
    r, m = domain.r, domain.size
    # the same sizes the reference insists on, before any byte reaches C
    for name, values in (("a", a), ("b", b), ("c", c)):
        if len(values) != m:
            raise ValueError(f"NTT of size {m} needs {m} values, got {len(values)} in {name}")
    g = domain.coset_shift
    z_inv = pow(domain.evaluate_vanishing(g), -1, r)
    raw = module.qap_h(*_field(r), _pack(a), _pack(b), _pack(c), domain.log_size, _le(domain.omega),
                       _le(pow(domain.omega, -1, r)), _le(g), _le(pow(g, -1, r)), _le(pow(m, -1, r)), _le(z_inv))
    h = _unpack(raw, m)
    # A B - C is divisible by Z only when every constraint holds; then deg h <= m - 2
    if h[m - 1] != 0:
        raise ArithmeticError("A*B - C is not divisible by Z: the witness does not satisfy the constraints")
    return h[: m - 1]


def compute_fixed_base_muls_mcl(mcl: Any, group: int, base: Affine, scalars: Sequence[int], scalar_bits: int) -> list[Affine]:
    """[k * base for k in scalars] in raw-int affine form, on mcl (verifier/mcl.py's loaded library).

    `scalars` must lie in [0, r) (the setup's are reduced); the result is the same points
    prover.ec.compute_fixed_base_muls gives.
    """
    module = get_module()
    if base is None:
        raise ValueError("fixed-base multiplication needs a base point other than the identity")
    for k in scalars:
        # the C side reads 256-bit little-endian scalars, reduced
        if not 0 <= k < mcl.r:
            raise ValueError(f"scalar {k} is outside [0, r)")
    if not scalars:
        return []
    lib = mcl.lib
    prefix = "mclBnG1_" if group == 1 else "mclBnG2_"
    add, dbl, normalize, is_zero = (ctypes.cast(getattr(lib, prefix + name), ctypes.c_void_p).value
                                    for name in ("add", "dbl", "normalize", "isZero"))
    coords = 2 if group == 1 else 4
    base_bytes = bytes((mcl.g1_array if group == 1 else mcl.g2_array)([base])[0])
    n = len(scalars)
    # windows of w bits: ceil(bits / w) additions per scalar against ceil(bits / w) * 2^w for the table
    window = min(range(2, _WINDOW_MAX + 1), key=lambda w: -(-scalar_bits // w) * (n + (1 << w)))
    points: list[Affine] = []
    # in chunks, so the bytes and ints in flight stay small next to the points kept (a 2^20-row
    # setup: 1.4 GB less at its peak); each call rebuilds the table, about 0.1 s
    for start in range(0, n, _FIXED_BASE_CHUNK):
        part = scalars[start:start + _FIXED_BASE_CHUNK]
        raw = module.fixed_base(add, dbl, normalize, is_zero, len(base_bytes), coords, *_field(mcl.q), base_bytes,
                                _pack(part), scalar_bits, window)
        values = _unpack(raw, len(part) * coords)
        del raw
        if group == 1:
            points.extend(None if not (x or y) else (x, y) for x, y in zip(values[0::2], values[1::2]))
        else:
            it = iter(values)
            points.extend(None if not (x0 or x1 or y0 or y1) else ((x0, x1), (y0, y1)) for x0, x1, y0, y1 in zip(it, it, it, it))
    return points


def load_mcl_points(mcl: Any, group: int, raw: bytes | memoryview, prefix: bytes = b"") -> bytearray:
    """mcl's memory form of a proving-key file's point section (big-endian 32-byte coordinates,
    all zero = identity), after `prefix` (points already in mcl's form); each coordinate checked
    < q and each point on its curve (in C: mcl's isValid would also check G1's order, 40 us a point).
    ValueError naming the first invalid point."""
    module = get_module()
    coords = 2 if group == 1 else 4
    width, size = 32 * coords, 48 * coords
    # whole points only
    if len(raw) % width:
        raise ValueError(f"a G{group} point section holds {width}-byte points, got {len(raw)} bytes")
    out = bytearray(len(prefix) + len(raw) // width * size)
    out[:len(prefix)] = prefix
    # the curves' b from py_ecc: y^2 = x^3 + b in G1, over Fq2 (the twist) in G2
    b = _le(int(bn.b)) if group == 1 else _le(int(bn.b2.coeffs[0])) + _le(int(bn.b2.coeffs[1]))
    bad = module.load_points(coords, *_field(mcl.q), b, raw, memoryview(out)[len(prefix):])
    if bad >= 0:
        raise ValueError(f"point {bad} of the section is not a G{group} point (coordinate >= q, or off the curve)")
    return out
