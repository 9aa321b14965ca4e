"""Circuit-specific Groth16 setup (arkworks' `generator`): UNSAFE FOR PRODUCTION.

This is a single-party setup: the process that runs it knows the toxic waste (tau, alpha, beta,
gamma, delta) and could forge proofs for the circuit. It exists for tests, benchmarks and
development networks. A production deployment needs a multi-party ceremony (e.g. snarkjs's
powers of tau + phase 2), whose keys B's snarkjs importers can read.

What it produces (G1 = generator of G1, G2 = generator of G2, m = domain size):
    alpha_g1, beta_g1, delta_g1, beta_g2, gamma_g2, delta_g2
    a_query[i]    = A_i(tau) G1                              every wire
    b_g1_query[i] = B_i(tau) G1,  b_g2_query[i] = B_i(tau) G2 every wire
    gamma_abc[i]  = (beta A_i + alpha B_i + C_i)(tau) / gamma G1   wires 0 .. n_public (in the vk)
    l_query[i]    = (beta A_i + alpha B_i + C_i)(tau) / delta G1   private wires
    h_query[i]    = tau^i Z(tau) / delta G1                  i = 0 .. m - 2
and a transcript that lets anyone check the key against the circuit without the toxic waste
(`check_setup`): tau G2, Z(tau) G1, the Lagrange basis L_j(tau) G1 of the domain, and
c_query[i] = C_i(tau) G1.

Points are stored affine on raw ints (`prover.ec`), None for the identity; the verifying key
holds py_ecc points, as `verifier.groth16.VerifyingKey` defines them. Every point is k G for a
known k: those products run on a proving backend (prover/backends.py: `fixed_base_muls`), and
every backend gives the same key for the same toxic waste. A proving worker can load a key
straight into its backend's form (`load_proving_key(prepared_for=...)`).
"""

from __future__ import annotations

import hashlib
import random
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from prover.backends import ProverBackend, get_prover_backend
from prover.ec import Affine, Arith, get_arith
from prover.msm import compute_msm_affine
from prover.qap import Constraint, Domain, compute_lagrange_at, compute_qap_at, get_qap_domain
from prover.r1cs import ConstraintSystem
from verifier.curve import BN254, CURVES, Curve
from verifier.groth16 import VerifyingKey

UNSAFE_WARNING = (
    "UNSAFE FOR PRODUCTION: single-party Groth16 setup; the toxic waste was known to the process "
    "that made this key, which can forge proofs for this circuit."
)


class InvalidProvingKey(ValueError):
    """A proving key file or object is malformed or inconsistent."""


@dataclass(frozen=True)
class ToxicWaste:
    """The secret trapdoor of a single-party setup. Whoever holds it can forge proofs."""

    tau: int
    alpha: int
    beta: int
    gamma: int
    delta: int


@dataclass
class SetupTranscript:
    """Extra points that let `check_setup` verify the key against the circuit without the secrets."""

    tau_g2: Affine
    z_tau_g1: Affine  # Z(tau) G1
    lagrange_g1: list[Affine]  # L_j(tau) G1, j < m
    c_query: list[Affine]  # C_i(tau) G1, every wire


@dataclass
class PreparedQueries:
    """A key's fixed MSM bases in one proving backend's form (prover/backends.py)."""

    a: Any  # alpha_g1, delta_g1, a_query
    b_g1: Any  # beta_g1, delta_g1, b_g1_query
    b_g2: Any  # beta_g2, delta_g2, b_g2_query
    l: Any  # noqa: E741 - the paper's name
    h: Any


@dataclass
class ProvingKey:
    """Everything the prover needs, with the circuit's constraints. UNSAFE FOR PRODUCTION (see warning)."""

    vk: VerifyingKey
    beta_g1: Affine
    delta_g1: Affine
    a_query: list[Affine]
    b_g1_query: list[Affine]
    b_g2_query: list[Affine]
    h_query: list[Affine]
    l_query: list[Affine]
    constraints: list[Constraint]
    n_public: int
    n_vars: int
    domain_log_size: int
    curve: Curve = BN254
    transcript: SetupTranscript | None = None
    warning: str = field(default=UNSAFE_WARNING)
    # per backend name, the bases converted once (prover.groth16.get_prepared_queries); not saved
    prepared: dict[str, PreparedQueries] = field(default_factory=dict, repr=False, compare=False)
    # a backend's name if the query points were loaded straight into its form (the lists above are
    # then empty): a proving worker's key, which serves that backend only and cannot be saved
    only_prepared: str | None = None

    @property
    def n_constraints(self) -> int:
        return len(self.constraints)

    @property
    def domain(self) -> Domain:
        domain = get_qap_domain(self.curve.r, self.n_constraints, self.n_public)
        # the stored size must be the one the constraint count implies
        if domain.log_size != self.domain_log_size:
            raise InvalidProvingKey("proving key's domain size does not match its constraint count")
        return domain

    def get_affine(self, name: str) -> Affine:
        """alpha_g1, beta_g2 or delta_g2 of the verifying key as a raw-int affine point."""
        group = 2 if name.endswith("g2") else 1
        return get_arith(self.curve, group).from_py_ecc(getattr(self.vk, name))


# --- toxic waste ---
def compute_toxic_waste_from_seed(seed: int | bytes | str, curve: Curve = BN254) -> ToxicWaste:
    """Deterministic toxic waste from a seed (tests and benchmarks only): SHA-256 in counter mode."""
    seed_bytes = seed if isinstance(seed, bytes) else str(seed).encode()
    values = []
    counter = 0
    while len(values) < 5:
        digest = hashlib.sha256(b"groth16-setup|" + seed_bytes + b"|" + str(counter).encode()).digest()
        digest += hashlib.sha256(digest).digest()
        value = int.from_bytes(digest, "big") % curve.r
        counter += 1
        if value > 1:
            values.append(value)
    return ToxicWaste(*values)


def compute_random_toxic_waste(curve: Curve = BN254) -> ToxicWaste:
    """Toxic waste from the OS's CSPRNG (still a single-party setup)."""
    return ToxicWaste(*(secrets.randbelow(curve.r - 2) + 2 for _ in range(5)))


# --- setup ---
def setup(cs: ConstraintSystem, *, toxic_waste: ToxicWaste | None = None, seed: int | bytes | str | None = None,
          backend: str | ProverBackend | None = None) -> ProvingKey:
    """UNSAFE FOR PRODUCTION. Proving key for the circuit `cs` (its witness is not used).

    Toxic waste: explicit, else derived from `seed` (reproducible), else drawn from `secrets`.
    `backend`: where the fixed-base products run (prover/backends.py; default: the configured or
    fastest installed); every backend makes the same key from the same toxic waste.
    """
    # one source of randomness, so a test cannot believe it fixed the key while it did not
    if toxic_waste is not None and seed is not None:
        raise ValueError("give either toxic_waste or seed, not both")
    if toxic_waste is None:
        toxic_waste = compute_toxic_waste_from_seed(seed, cs.curve) if seed is not None else compute_random_toxic_waste(cs.curve)
    return generate_proving_key(cs.constraints, cs.n_vars, cs.n_public, cs.curve, toxic_waste, backend=backend)


def generate_proving_key(constraints: Sequence[Constraint], n_vars: int, n_public: int, curve: Curve,
                         toxic_waste: ToxicWaste, *, backend: str | ProverBackend | None = None) -> ProvingKey:
    """UNSAFE FOR PRODUCTION. The Groth16 keys of an R1CS for explicit toxic waste."""
    r = curve.r
    chosen = get_prover_backend(backend, curve)
    tw = toxic_waste
    # every secret must be a non-zero field element, or the key degenerates
    for name in ("tau", "alpha", "beta", "gamma", "delta"):
        value = getattr(tw, name)
        if not 0 < value < r:
            raise ValueError(f"toxic waste {name} must be in [1, r)")
    # there must be a private wire for every index the constraints use, and wire 0 is ONE
    if not 0 <= n_public < n_vars:
        raise ValueError(f"n_public ({n_public}) must be below n_vars ({n_vars})")
    domain = get_qap_domain(r, len(constraints), n_public)
    a, b, c = compute_qap_at(constraints, n_vars, n_public, domain, tw.tau)
    lagrange = compute_lagrange_at(domain, tw.tau)
    z_tau = domain.evaluate_vanishing(tw.tau)
    gamma_inv = pow(tw.gamma, -1, r)
    delta_inv = pow(tw.delta, -1, r)
    combined = [(tw.beta * ai + tw.alpha * bi + ci) % r for ai, bi, ci in zip(a, b, c)]
    ic = [x * gamma_inv % r for x in combined[: n_public + 1]]
    l_scalars = [x * delta_inv % r for x in combined[n_public + 1:]]
    h_scalars = []
    power = z_tau * delta_inv % r
    for _ in range(domain.size - 1):
        h_scalars.append(power)
        power = power * tw.tau % r

    g1 = get_arith(curve, 1)
    g2 = get_arith(curve, 2)
    g1_scalars = [tw.alpha, tw.beta, tw.delta, z_tau] + a + b + c + ic + l_scalars + h_scalars + lagrange
    g1_points = _split(chosen.fixed_base_muls(g1, g1.from_py_ecc(curve.G1), g1_scalars),
                       [4, n_vars, n_vars, n_vars, len(ic), len(l_scalars), len(h_scalars), len(lagrange)])
    (alpha_g1, beta_g1, delta_g1, z_tau_g1), a_query, b_g1_query, c_query, ic_g1, l_query, h_query, lagrange_g1 = g1_points
    g2_scalars = [tw.beta, tw.gamma, tw.delta, tw.tau] + b
    (beta_g2, gamma_g2, delta_g2, tau_g2), b_g2_query = _split(
        chosen.fixed_base_muls(g2, g2.from_py_ecc(curve.G2), g2_scalars), [4, n_vars])

    vk = VerifyingKey(
        alpha_g1=g1.to_py_ecc(alpha_g1),
        beta_g2=g2.to_py_ecc(beta_g2),
        gamma_g2=g2.to_py_ecc(gamma_g2),
        delta_g2=g2.to_py_ecc(delta_g2),
        gamma_abc_g1=tuple(g1.to_py_ecc(p) for p in ic_g1),
        curve=curve,
    )
    return ProvingKey(
        vk=vk, beta_g1=beta_g1, delta_g1=delta_g1, a_query=a_query, b_g1_query=b_g1_query,
        b_g2_query=b_g2_query, h_query=h_query, l_query=l_query,
        constraints=[tuple(dict(lc) for lc in row) for row in constraints],  # type: ignore[misc]
        n_public=n_public, n_vars=n_vars, domain_log_size=domain.log_size, curve=curve,
        transcript=SetupTranscript(tau_g2=tau_g2, z_tau_g1=z_tau_g1, lagrange_g1=lagrange_g1, c_query=c_query),
    )


def _split(points: list[Affine], sizes: Sequence[int]) -> list[list[Affine]]:
    out = []
    start = 0
    for size in sizes:
        out.append(points[start:start + size])
        start += size
    return out


# --- checking a key without the toxic waste ---
def check_setup(pk: ProvingKey, *, rng_seed: int | None = None) -> None:
    """Check that a proving key is a correct Groth16 key for its own constraints.

    Needs the transcript. Every family of points is compressed by a random linear combination
    (128-bit coefficients; from `secrets` unless rng_seed is given), then checked with pairings:
      1. every point is on its curve; alpha, beta, gamma, delta, tau G2 are not the identity;
      2. beta_g1 ~ beta_g2, delta_g1 ~ delta_g2, b_g1_query ~ b_g2_query (same scalars);
      3. the Lagrange points are those of one tau: e(sum rho_j L_j, tau G2) =
         e(sum rho_j w^j L_j + (sum rho_j w^j / m) Z(tau) G1, G2), and sum_j L_j = G1
         (together these force L_j = L_j(tau) G1 and Z(tau) G1 = (tau^m - 1) G1);
      4. a, b_g1 and c queries are the circuit's columns over the Lagrange points (MSMs only);
      5. l_query and gamma_abc: e(L, delta) = e(A, beta) e(alpha, B) e(C, G2) (and with gamma);
      6. h_query: e(H_0, delta_g2) = e(Z(tau) G1, G2) and H_{i+1} = tau H_i.
    Raises InvalidProvingKey naming the failed check.
    """
    curve = pk.curve
    r = curve.r
    g1 = get_arith(curve, 1)
    g2 = get_arith(curve, 2)
    transcript = pk.transcript
    # without the transcript the circuit-dependent points cannot be checked
    if transcript is None:
        raise InvalidProvingKey("proving key has no setup transcript to check")
    domain = pk.domain
    m = domain.size
    n_private = pk.n_vars - pk.n_public - 1
    alpha_g1, beta_g2, gamma_g2, delta_g2 = (pk.get_affine(n) for n in ("alpha_g1", "beta_g2", "gamma_g2", "delta_g2"))
    ic = [g1.from_py_ecc(p) for p in pk.vk.gamma_abc_g1]
    lengths = {
        "a_query": (len(pk.a_query), pk.n_vars), "b_g1_query": (len(pk.b_g1_query), pk.n_vars),
        "b_g2_query": (len(pk.b_g2_query), pk.n_vars), "l_query": (len(pk.l_query), n_private),
        "h_query": (len(pk.h_query), m - 1), "gamma_abc_g1": (len(ic), pk.n_public + 1),
        "lagrange_g1": (len(transcript.lagrange_g1), m), "c_query": (len(transcript.c_query), pk.n_vars),
    }
    for name, (got, want) in lengths.items():
        # every query has one point per wire (or per domain element)
        if got != want:
            raise InvalidProvingKey(f"{name} has {got} points, expected {want}")
    g1_points = [alpha_g1, pk.beta_g1, pk.delta_g1, transcript.z_tau_g1, *pk.a_query, *pk.b_g1_query, *pk.l_query,
                 *pk.h_query, *ic, *transcript.lagrange_g1, *transcript.c_query]
    g2_points = [beta_g2, gamma_g2, delta_g2, transcript.tau_g2, *pk.b_g2_query]
    # 1. points on their curves, secrets non-zero
    if not all(g1.is_on_curve(p) for p in g1_points) or not all(g2.is_on_curve(p) for p in g2_points):
        raise InvalidProvingKey("a point of the proving key is not on its curve")
    for name, point in (("alpha_g1", alpha_g1), ("beta_g1", pk.beta_g1), ("delta_g1", pk.delta_g1),
                        ("beta_g2", beta_g2), ("gamma_g2", gamma_g2), ("delta_g2", delta_g2), ("tau_g2", transcript.tau_g2)):
        if point is None:
            raise InvalidProvingKey(f"{name} is the identity")

    rand = _get_coefficient_source(rng_seed)
    G1 = g1.from_py_ecc(curve.G1)
    G2 = g2.from_py_ecc(curve.G2)

    def msm1(points: Sequence[Affine], scalars: Sequence[int]) -> Affine:
        return g1.to_affine(compute_msm_affine(g1, points, scalars))

    def msm2(points: Sequence[Affine], scalars: Sequence[int]) -> Affine:
        return g2.to_affine(compute_msm_affine(g2, points, scalars))

    # 2. same secrets in G1 and G2
    rho = [rand() for _ in range(pk.n_vars + 2)]
    left = msm1([pk.beta_g1, pk.delta_g1, *pk.b_g1_query], rho)
    right = msm2([beta_g2, delta_g2, *pk.b_g2_query], rho)
    _check_pairings(curve, [(left, G2), (g1.neg(G1), right)], "beta, delta or b_query differ between G1 and G2")

    # 3. Lagrange points of one tau
    if msm1(transcript.lagrange_g1, [1] * m) != G1:
        raise InvalidProvingKey("Lagrange points do not sum to the generator")
    rho = [rand() for _ in range(m)]
    omega_rho = [x * w % r for x, w in zip(rho, domain.elements)]
    coeff_z = sum(omega_rho) * pow(m, -1, r) % r
    lag_sum = msm1(transcript.lagrange_g1, rho)
    rhs = msm1([*transcript.lagrange_g1, transcript.z_tau_g1], [*omega_rho, coeff_z])
    _check_pairings(curve, [(lag_sum, transcript.tau_g2), (g1.neg(rhs), G2)], "Lagrange points are not those of tau")

    # 4. queries are the circuit's columns
    rho = [rand() for _ in range(pk.n_vars)]
    for name, query, matrix in (("a_query", pk.a_query, 0), ("b_g1_query", pk.b_g1_query, 1), ("c_query", transcript.c_query, 2)):
        per_row = [0] * m
        for j, row in enumerate(pk.constraints):
            per_row[j] = sum(k * rho[i] for i, k in row[matrix].items()) % r
        if matrix == 0:
            for i in range(pk.n_public + 1):
                per_row[pk.n_constraints + i] = rho[i]
        if msm1(query, rho) != msm1(transcript.lagrange_g1, per_row):
            raise InvalidProvingKey(f"{name} does not match the circuit's constraints")

    # 5. l_query (over delta) and gamma_abc (over gamma)
    for name, points, wires, divisor in (("gamma_abc_g1", ic, range(0, pk.n_public + 1), gamma_g2),
                                         ("l_query", pk.l_query, range(pk.n_public + 1, pk.n_vars), delta_g2)):
        sub = [rho[i] if i in wires else 0 for i in range(pk.n_vars)]
        _check_pairings(curve, [
            (msm1(points, [rho[i] for i in wires]), divisor),
            (g1.neg(msm1(pk.a_query, sub)), beta_g2),
            (g1.neg(alpha_g1), msm2(pk.b_g2_query, sub)),
            (g1.neg(msm1(transcript.c_query, sub)), G2),
        ], f"{name} is not (beta A + alpha B + C) / secret")

    # 6. h_query: Z(tau)/delta times powers of tau
    if m > 1:
        _check_pairings(curve, [(pk.h_query[0], delta_g2), (g1.neg(transcript.z_tau_g1), G2)], "h_query[0] is not Z(tau)/delta")
    if m > 2:
        rho = [rand() for _ in range(m - 2)]
        _check_pairings(curve, [(msm1(pk.h_query[1:], rho), G2), (g1.neg(msm1(pk.h_query[:-1], rho)), transcript.tau_g2)],
                        "h_query is not a sequence of powers of tau")


def _get_coefficient_source(seed: int | None) -> Callable[[], int]:
    if seed is None:
        return lambda: secrets.randbits(128)
    rng = random.Random(seed)
    return lambda: rng.getrandbits(128)


def _check_pairings(curve: Curve, pairs: Sequence[tuple[Affine, Affine]], message: str) -> None:
    """prod e(P_i, Q_i) == 1 with one final exponentiation, else InvalidProvingKey(message)."""
    g1 = get_arith(curve, 1)
    g2 = get_arith(curve, 2)
    f = curve.FQ12.one()
    for p, q in pairs:
        if p is None or q is None:
            continue
        f = f * curve.miller_loop(g1.to_py_ecc(p), g2.to_py_ecc(q))
    if curve.final_exponentiate(f) != curve.FQ12.one():
        raise InvalidProvingKey(f"setup check failed: {message}")


# --- binary format ---
MAGIC = b"G16PKEY\x00"
FORMAT_VERSION = 1


def _field_bytes(curve: Curve) -> int:
    return (curve.q.bit_length() + 7) // 8


def _write_points(out: BinaryIO, arith: Arith, points: Sequence[Affine]) -> None:
    size = _field_bytes(arith.curve)
    zero = bytes(size * (2 if arith.group == 1 else 4))
    out.write(struct.pack("<I", len(points)))
    # a block at a time: a 2^20-row key's sections as one bytes object would double the setup's peak
    for start in range(0, len(points), 1 << 16):
        chunks = []
        for p in points[start:start + (1 << 16)]:
            if p is None:
                chunks.append(zero)
            elif arith.group == 1:
                chunks.append(p[0].to_bytes(size, "big") + p[1].to_bytes(size, "big"))
            else:
                (x0, x1), (y0, y1) = p
                chunks.append(b"".join(v.to_bytes(size, "big") for v in (x0, x1, y0, y1)))
        out.write(b"".join(chunks))


def _read_points(data: memoryview, pos: int, arith: Arith) -> tuple[list[Affine], int]:
    section, end = _get_section(data, pos, arith)
    return _parse_points(section, arith, pos + 4), end


def _get_section(data: memoryview, pos: int, arith: Arith) -> tuple[memoryview, int]:
    """A point section's bytes (after its count) and the position after it."""
    size = _field_bytes(arith.curve)
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    width = size * (2 if arith.group == 1 else 4)
    # the section must fit in the file
    if pos + count * width > len(data):
        raise InvalidProvingKey("proving key file is truncated")
    return data[pos:pos + count * width], pos + count * width


def _parse_points(data: memoryview, arith: Arith, pos: int = 0) -> list[Affine]:
    """The points of a section's bytes, each checked on its curve (`pos`: the offset for errors)."""
    size = _field_bytes(arith.curve)
    width = size * (2 if arith.group == 1 else 4)
    points: list[Affine] = []
    for k in range(len(data) // width):
        raw = bytes(data[k * width:(k + 1) * width])
        values = [int.from_bytes(raw[t * size:(t + 1) * size], "big") for t in range(width // size)]
        if not any(values):
            points.append(None)
            continue
        point: Affine = (values[0], values[1]) if arith.group == 1 else ((values[0], values[1]), (values[2], values[3]))
        # a point off the curve means a corrupted or forged file
        if not arith.is_on_curve(point):
            raise InvalidProvingKey(f"proving key point is not on the curve (G{arith.group}, section offset {pos})")
        points.append(point)
    return points


def _write_constraints(out: BinaryIO, constraints: Sequence[Constraint], r: int) -> None:
    chunks = [struct.pack("<I", len(constraints))]
    half = r // 2
    for row in constraints:
        for lc in row:
            chunks.append(struct.pack("<I", len(lc)))
            for wire, coeff in lc.items():
                # small negative coefficients (r - k) are stored as k with a sign bit
                negative = coeff > half
                magnitude = r - coeff if negative else coeff
                raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
                chunks.append(struct.pack("<IB", wire, len(raw) | (0x80 if negative else 0)) + raw)
    out.write(b"".join(chunks))


def _read_constraints(data: memoryview, pos: int, r: int, n_vars: int) -> tuple[list[Constraint], int]:
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    constraints: list[Constraint] = []
    for _ in range(count):
        row = []
        for _ in range(3):
            (n_terms,) = struct.unpack_from("<I", data, pos)
            pos += 4
            lc: dict[int, int] = {}
            for _ in range(n_terms):
                wire, flag = struct.unpack_from("<IB", data, pos)
                pos += 5
                length = flag & 0x7F
                magnitude = int.from_bytes(data[pos:pos + length], "big")
                pos += length
                # a wire index outside the witness, or an unreduced coefficient, is corruption
                if wire >= n_vars or not 0 < magnitude < r:
                    raise InvalidProvingKey("proving key constraint has an invalid wire or coefficient")
                lc[wire] = r - magnitude if flag & 0x80 else magnitude
            row.append(lc)
        constraints.append(tuple(row))  # type: ignore[arg-type]
    return constraints, pos


def save_proving_key(pk: ProvingKey, path: str | Path) -> int:
    """Write the compact binary proving key; returns its size in bytes.

    Layout (little-endian counts, big-endian field elements of ceil(log2 q / 8) bytes; a point is
    x || y, G2 coordinates as c0 || c1; the identity is all zero bytes, which no curve point is):
      magic "G16PKEY\\0", u16 version, u8 + curve name, u16 + warning (UTF-8),
      u32 n_vars, u32 n_public, u8 domain log size,
      G1: alpha, beta, delta; G2: beta, gamma, delta; G1[] gamma_abc, a_query, b_g1_query, l_query,
      h_query; G2[] b_g2_query; constraints; u8 transcript flag, then G2 tau, G1 Z(tau),
      G1[] lagrange, G1[] c_query.
    """
    # a worker's key has no query points left to write
    if pk.only_prepared is not None:
        raise InvalidProvingKey(f"this proving key was loaded for backend {pk.only_prepared} only; it cannot be saved")
    g1 = get_arith(pk.curve, 1)
    g2 = get_arith(pk.curve, 2)
    path = Path(path)
    with path.open("wb") as out:
        name = pk.curve.name.encode()
        warning = pk.warning.encode()
        out.write(MAGIC + struct.pack("<HB", FORMAT_VERSION, len(name)) + name)
        out.write(struct.pack("<H", len(warning)) + warning)
        out.write(struct.pack("<IIB", pk.n_vars, pk.n_public, pk.domain_log_size))
        _write_points(out, g1, [pk.get_affine("alpha_g1"), pk.beta_g1, pk.delta_g1])
        _write_points(out, g2, [pk.get_affine("beta_g2"), pk.get_affine("gamma_g2"), pk.get_affine("delta_g2")])
        _write_points(out, g1, [g1.from_py_ecc(p) for p in pk.vk.gamma_abc_g1])
        for query in (pk.a_query, pk.b_g1_query, pk.l_query, pk.h_query):
            _write_points(out, g1, query)
        _write_points(out, g2, pk.b_g2_query)
        _write_constraints(out, pk.constraints, pk.curve.r)
        t = pk.transcript
        out.write(struct.pack("<B", 0 if t is None else 1))
        if t is not None:
            _write_points(out, g2, [t.tau_g2])
            _write_points(out, g1, [t.z_tau_g1])
            _write_points(out, g1, t.lagrange_g1)
            _write_points(out, g1, t.c_query)
    return path.stat().st_size


def load_proving_key(path: str | Path, *, with_transcript: bool = True,
                     prepared_for: str | ProverBackend | None = None) -> ProvingKey:
    """Read a key written by save_proving_key; checks format, version, curve and that points lie on their curves.

    `with_transcript=False` skips the setup transcript (only `check_setup` reads it): a prover's
    key then holds about a third fewer points, and loads faster. `prepared_for` (a proving backend)
    also reads the query points straight into that backend's form, never as Python ints: the
    smallest key a proving worker can hold (mcl: 96 bytes per G1 point instead of about 180), usable
    on that backend only (`only_prepared`); it implies no transcript."""
    return parse_proving_key(Path(path).read_bytes(), with_transcript=with_transcript, prepared_for=prepared_for)


def parse_proving_key(content: bytes, *, with_transcript: bool = True,
                      prepared_for: str | ProverBackend | None = None) -> ProvingKey:
    """A key from the bytes of a file written by save_proving_key (checked as load_proving_key does)."""
    data = memoryview(content)
    try:
        return _parse_proving_key(data, with_transcript and prepared_for is None, prepared_for)
    except struct.error as exc:
        raise InvalidProvingKey(f"proving key file is truncated or malformed: {exc}") from exc


def _skip_points(data: memoryview, pos: int, arith: Arith) -> int:
    """The position after a point section, unread (its size still checked against the file)."""
    (count,) = struct.unpack_from("<I", data, pos)
    end = pos + 4 + count * _field_bytes(arith.curve) * (2 if arith.group == 1 else 4)
    # the section must fit in the file
    if end > len(data):
        raise InvalidProvingKey("proving key file is truncated")
    return end


def _parse_proving_key(data: memoryview, with_transcript: bool = True, prepared_for: str | ProverBackend | None = None) -> ProvingKey:
    # the file must be one of ours
    if bytes(data[:len(MAGIC)]) != MAGIC:
        raise InvalidProvingKey("not a proving key file (bad magic bytes)")
    pos = len(MAGIC)
    version, name_len = struct.unpack_from("<HB", data, pos)
    pos += 3
    # only the format this code writes can be read back safely
    if version != FORMAT_VERSION:
        raise InvalidProvingKey(f"proving key format version {version} is not supported (expected {FORMAT_VERSION})")
    curve_name = bytes(data[pos:pos + name_len]).decode("ascii", "replace")
    pos += name_len
    # the curve decides the field sizes of everything that follows
    if curve_name not in CURVES:
        raise InvalidProvingKey(f"proving key is for unknown curve {curve_name!r}")
    curve = CURVES[curve_name]
    (warning_len,) = struct.unpack_from("<H", data, pos)
    pos += 2
    warning = bytes(data[pos:pos + warning_len]).decode("utf-8", "replace")
    pos += warning_len
    n_vars, n_public, log_size = struct.unpack_from("<IIB", data, pos)
    pos += 9
    g1 = get_arith(curve, 1)
    g2 = get_arith(curve, 2)
    (alpha_g1, beta_g1, delta_g1), pos = _read_points(data, pos, g1)
    (beta_g2, gamma_g2, delta_g2), pos = _read_points(data, pos, g2)
    ic, pos = _read_points(data, pos, g1)
    sections = []
    for arith in (g1, g1, g1, g1, g2):  # a_query, b_g1_query, l_query, h_query, b_g2_query
        section, end = _get_section(data, pos, arith)
        sections.append((section, arith, pos + 4))
        pos = end
    counts = [len(section) // (_field_bytes(curve) * (2 if arith.group == 1 else 4)) for section, arith, _ in sections]
    prepared: dict[str, PreparedQueries] = {}
    only_prepared = None
    if prepared_for is None:
        a_query, b_g1_query, l_query, h_query, b_g2_query = (_parse_points(*section) for section in sections)
    else:
        backend = get_prover_backend(prepared_for, curve)
        a_query, b_g1_query, l_query, h_query, b_g2_query = [], [], [], [], []
        bases = []
        for (section, arith, offset), prefix in zip(sections, ([alpha_g1, delta_g1], [beta_g1, delta_g1], [], [], [beta_g2, delta_g2])):
            try:
                bases.append(backend.prepare_section(arith, prefix, section, lambda raw, a=arith, o=offset: _parse_points(raw, a, o)))
            except InvalidProvingKey:
                raise
            except ValueError as exc:  # the native reader's
                raise InvalidProvingKey(f"proving key point is not on the curve ({exc})") from None
        prepared[backend.name] = PreparedQueries(a=bases[0], b_g1=bases[1], b_g2=bases[4], l=bases[2], h=bases[3])
        only_prepared = backend.name
    constraints, pos = _read_constraints(data, pos, curve.r, n_vars)
    (has_transcript,) = struct.unpack_from("<B", data, pos)
    pos += 1
    transcript = None
    if has_transcript and not with_transcript:
        for arith in (g2, g1, g1, g1):  # tau G2, Z(tau) G1, Lagrange points, c_query
            pos = _skip_points(data, pos, arith)
    elif has_transcript:
        (tau_g2,), pos = _read_points(data, pos, g2)
        (z_tau_g1,), pos = _read_points(data, pos, g1)
        lagrange_g1, pos = _read_points(data, pos, g1)
        c_query, pos = _read_points(data, pos, g1)
        transcript = SetupTranscript(tau_g2, z_tau_g1, lagrange_g1, c_query)
    # nothing may follow the last section
    if pos != len(data):
        raise InvalidProvingKey("proving key file has trailing bytes")
    # the per-wire queries must match the header's counts
    if len(ic) != n_public + 1 or counts[0] != n_vars or counts[4] != n_vars or counts[2] != n_vars - n_public - 1:
        raise InvalidProvingKey("proving key sections do not match its wire counts")
    vk = VerifyingKey(alpha_g1=g1.to_py_ecc(alpha_g1), beta_g2=g2.to_py_ecc(beta_g2), gamma_g2=g2.to_py_ecc(gamma_g2),
                      delta_g2=g2.to_py_ecc(delta_g2), gamma_abc_g1=tuple(g1.to_py_ecc(p) for p in ic), curve=curve)
    pk = ProvingKey(vk=vk, beta_g1=beta_g1, delta_g1=delta_g1, a_query=a_query, b_g1_query=b_g1_query,
                    b_g2_query=b_g2_query, h_query=h_query, l_query=l_query, constraints=constraints,
                    n_public=n_public, n_vars=n_vars, domain_log_size=log_size, curve=curve,
                    transcript=transcript, warning=warning, prepared=prepared, only_prepared=only_prepared)
    # the domain size must be the one the constraint count implies
    if get_qap_domain(curve.r, len(constraints), n_public).log_size != log_size:
        raise InvalidProvingKey("proving key's domain size does not match its constraint count")
    return pk
