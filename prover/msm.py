"""Multi-scalar multiplication sum_i k_i * P_i in G1 or G2.

Two implementations with one API, `msm(curve, points, scalars, group=1|2)` on py_ecc points:
- `msm_naive`: one py_ecc scalar multiplication per point (the reference);
- `msm_pippenger`: Pippenger's bucket method on raw-int coordinates (`prover.ec`).

Pippenger here exploits what a Groth16 witness looks like (most wires are bits):
- a scalar 0 (or an identity point) costs nothing;
- a scalar k > r/2 is replaced by r - k on the negated point, so small negative values stay small;
- a scalar 1 is one mixed addition into a running sum;
- the rest is grouped by bit length, and each group gets its own window size and only as many
  windows as its longest scalar needs (a 64-bit amount uses 64 bits of windows, not 254);
- digits are signed (half the buckets) and, in G1, each window's buckets are filled by batched
  affine additions sharing one inversion per round (`G1Arith.sum_lists`).

Scalars must lie in [0, r): a scalar outside the field is a bug in the caller (an unreduced
witness value), so both implementations reject it with ValueError rather than reduce it.
"""

from __future__ import annotations

from typing import Sequence

from prover.ec import Affine, Arith, Jacobian, get_arith
from verifier.curve import Curve, Point

# upper bit lengths of the scalar groups Pippenger handles separately
_BIT_CLASSES = (4, 8, 16, 32, 64, 128)


def _check_inputs(curve: Curve, points: Sequence[Point], scalars: Sequence[int], group: int) -> None:
    # one scalar per point
    if len(points) != len(scalars):
        raise ValueError(f"MSM needs one scalar per point: {len(points)} points, {len(scalars)} scalars")
    # only G1 and G2 have point arithmetic
    if group not in (1, 2):
        raise ValueError(f"group must be 1 or 2, got {group}")
    r = curve.r
    for i, k in enumerate(scalars):
        # scalars are field elements; an unreduced one means the caller has a bug
        if not isinstance(k, int) or not 0 <= k < r:
            raise ValueError(f"scalar {i} is not a field element in [0, r): {k}")


def msm_naive(curve: Curve, points: Sequence[Point], scalars: Sequence[int], group: int = 1) -> Point:
    """Reference: sum of py_ecc scalar multiplications."""
    _check_inputs(curve, points, scalars, group)
    total = curve.Z1 if group == 1 else curve.Z2
    for point, k in zip(points, scalars):
        if k:
            total = curve.add(total, curve.multiply(point, k))
    return total


def msm_pippenger(curve: Curve, points: Sequence[Point], scalars: Sequence[int], group: int = 1) -> Point:
    """Pippenger's bucket method on raw-int coordinates; same result as msm_naive."""
    _check_inputs(curve, points, scalars, group)
    arith = get_arith(curve, group)
    bases = [arith.from_py_ecc(p) if k else None for p, k in zip(points, scalars)]
    return arith.to_py_ecc(arith.to_affine(compute_msm_affine(arith, bases, scalars)))


msm = msm_pippenger


def compute_msm_affine(arith: Arith, bases: Sequence[Affine], scalars: Sequence[int]) -> Jacobian:
    """sum k_i * P_i for affine raw-int bases and scalars in [0, r) (unchecked: the prover's path)."""
    r = arith.curve.r
    half = r >> 1
    add_mixed = arith.add_mixed
    neg = arith.neg
    ones: Jacobian = None
    classes: list[list[tuple[Affine, int]]] = [[] for _ in range(len(_BIT_CLASSES) + 1)]
    for base, k in zip(bases, scalars):
        if k == 0 or base is None:
            continue
        if k > half:
            k = r - k
            base = neg(base)
        if k == 1:
            ones = add_mixed(ones, base)
            continue
        bits = k.bit_length()
        slot = 0
        while slot < len(_BIT_CLASSES) and bits > _BIT_CLASSES[slot]:
            slot += 1
        classes[slot].append((base, k))
    total = ones
    for slot, pairs in enumerate(classes):
        if pairs:
            bits = _BIT_CLASSES[slot] if slot < len(_BIT_CLASSES) else r.bit_length()
            total = arith.add(total, compute_bucket_msm(arith, pairs, bits))
    return total


def get_window(n_points: int, bits: int, bucket_cost: float = 3.5) -> int:
    """Window c minimising the work of signed-digit Pippenger.

    About bits / c windows, each adding n points into buckets and then summing 2^(c-1)
    buckets at `bucket_cost` point additions each (a running-sum step is a mixed plus a Jacobian
    addition, dearer than the batched affine additions of the bucket phase).
    """
    return min(range(2, 21), key=lambda c: get_signed_window_count(bits, c) * (n_points + bucket_cost * (1 << (c - 1))))


def get_signed_window_count(bits: int, window: int) -> int:
    """Windows of signed digits for scalars below 2^bits: the top digit may take a carry."""
    return (bits + 1) // window + 1


def compute_bucket_msm(arith: Arith, pairs: Sequence[tuple[Affine, int]], bits: int, window: int | None = None) -> Jacobian:
    """Pippenger's bucket method with signed digits, for scalars below 2^bits.

    Each scalar is recoded into digits in [-2^(c-1), 2^(c-1)) (a digit d < 0 puts -P in bucket
    |d|, negation being free in affine), which halves the buckets. Each window's buckets are summed
    at once by `arith.sum_lists` (batched affine additions in G1), then combined as a sum of
    running sums from the top bucket down.
    """
    window = window or get_window(len(pairs), bits, arith.bucket_cost)
    n_windows = get_signed_window_count(bits, window)
    size = 1 << window
    mask = size - 1
    half = size >> 1
    neg = arith.neg
    per_window: list[list[list[Affine]]] = [[[] for _ in range(half + 1)] for _ in range(n_windows)]
    for base, k in pairs:
        negated = None
        carry = 0
        w = 0
        while k or carry:
            d = (k & mask) + carry
            k >>= window
            if d >= half:
                d -= size
                carry = 1
            else:
                carry = 0
            if d > 0:
                per_window[w][d].append(base)
            elif d < 0:
                if negated is None:
                    negated = neg(base)
                per_window[w][-d].append(negated)
            w += 1
    add_mixed = arith.add_mixed
    add = arith.add
    double = arith.double
    result: Jacobian = None
    for w in range(n_windows - 1, -1, -1):
        for _ in range(window if result is not None else 0):
            result = double(result)
        buckets = arith.sum_lists(per_window[w])
        per_window[w] = []  # free the window's lists early
        running: Jacobian = None
        window_sum: Jacobian = None
        for d in range(half, 0, -1):
            bucket = buckets[d]
            if bucket is not None:
                running = add_mixed(running, bucket)
            if running is not None:
                window_sum = add(window_sum, running)
        result = add(result, window_sum)
    return result
