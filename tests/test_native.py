"""The QAP quotient and the setup's fixed-base products: one suite over the pure-Python reference and
the native paths (prover/_native.c through prover/native.py, mcl with and without the extension).

A native path is skipped where it is not built or installed; the reference always runs, and the
suite must pass on each implementation alike.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest

from prover import native
from prover.backends import MclProver, PyEccProver
from prover.ec import get_arith
from prover.groth16 import prove
from prover.qap import compute_abc_evaluations, compute_h_reference, compute_lagrange_at, get_domain, get_qap_domain
from prover.setup import ToxicWaste, generate_proving_key, save_proving_key, setup
from test_groth16_verifier import build_mul_add
from test_qap import small_circuit
from verifier import backends
from verifier.curve import BLS12_381, BN254

needs_extension = pytest.mark.skipif(not native.is_available(), reason="prover._native is not built")
needs_mcl = pytest.mark.skipif(not backends.is_installed("mcl"), reason="backend mcl is not installed")

H_IMPLEMENTATIONS = {
    "python": PyEccProver().compute_h,
    "native": native.compute_h_from_evaluations,
}
PROVERS = {
    "python": lambda: PyEccProver(),
    "mcl+extension": lambda: MclProver(use_extension=True),
    "mcl": lambda: MclProver(use_extension=False),
}


@pytest.fixture(params=[pytest.param("python"), pytest.param("native", marks=needs_extension)])
def compute_h(request: pytest.FixtureRequest) -> Callable[..., list[int]]:
    return H_IMPLEMENTATIONS[request.param]


@pytest.fixture(params=[pytest.param("python"), pytest.param("mcl+extension", marks=[needs_mcl, needs_extension]),
                        pytest.param("mcl", marks=needs_mcl)])
def prover_backend(request: pytest.FixtureRequest) -> Any:
    return PROVERS[request.param]()


# --- the QAP quotient ---

@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=lambda c: c.name)
@pytest.mark.parametrize("log_size", [1, 2, 5, 9])
def test_h_of_random_satisfied_rows(compute_h: Callable[..., list[int]], curve: Any, log_size: int) -> None:
    """c_j = a_j b_j on every row makes A B - C vanish on H: any a, b give a quotient."""
    r = curve.r
    domain = get_domain(r, 1 << log_size)
    rng = random.Random(log_size)
    a = [rng.randrange(r) for _ in range(domain.size)]
    b = [rng.choice([0, 1, r - 1, rng.randrange(r)]) for _ in range(domain.size)]
    c = [x * y % r for x, y in zip(a, b)]
    h = compute_h(a, b, c, domain)
    assert h == H_IMPLEMENTATIONS["python"](a, b, c, domain) and len(h) == domain.size - 1
    # (A B - C)(x) = h(x) (x^m - 1) at a point x outside H, A(x) = sum_j a_j L_j(x)
    x = rng.randrange(r)
    lagrange = compute_lagrange_at(domain, x)
    at, bt, ct = (sum(v * lj for v, lj in zip(values, lagrange)) % r for values in (a, b, c))
    assert (at * bt - ct) % r == sum(hk * pow(x, k, r) for k, hk in enumerate(h)) * domain.evaluate_vanishing(x) % r


@pytest.mark.parametrize("curve", [BN254, BLS12_381], ids=lambda c: c.name)
def test_h_of_a_circuit_matches_the_quadratic_reference(compute_h: Callable[..., list[int]], curve: Any) -> None:
    cs = small_circuit(curve)
    domain = get_qap_domain(curve.r, cs.n_constraints, cs.n_public)
    evaluations = compute_abc_evaluations(cs.constraints, cs.witness, cs.n_public, domain)
    assert compute_h(*evaluations, domain) == compute_h_reference(cs.constraints, cs.witness, cs.n_public, domain)


def test_invalid_unsatisfied_rows_have_no_quotient(compute_h: Callable[..., list[int]]) -> None:
    domain = get_domain(BN254.r, 8)
    a, b = [3] * 8, [5] * 8
    c = [15] * 7 + [16]  # the last row is wrong
    with pytest.raises(ArithmeticError, match="not divisible"):
        compute_h(a, b, c, domain)


def test_invalid_evaluation_count(compute_h: Callable[..., list[int]]) -> None:
    domain = get_domain(BN254.r, 8)
    with pytest.raises(ValueError, match="needs 8 values"):
        compute_h([1] * 8, [1] * 8, [1] * 7, domain)


# --- fixed-base products (the setup) ---

@pytest.mark.parametrize("group", [1, 2])
def test_fixed_base_matches_py_ecc(prover_backend: Any, group: int) -> None:
    r = BN254.r
    arith = get_arith(BN254, group)
    generator = BN254.G1 if group == 1 else BN254.G2
    base = arith.from_py_ecc(BN254.multiply(generator, 7))
    rng = random.Random(group)
    scalars = [0, 1, 2, r - 1, r - 2, 1 << 253, (1 << 12) - 1, 1 << 12] + [rng.randrange(r) for _ in range(20)]
    got = prover_backend.fixed_base_muls(arith, base, scalars)
    expected = [arith.from_py_ecc(BN254.multiply(BN254.multiply(generator, 7), k)) if k else None for k in scalars]
    assert got == expected
    assert got[0] is None  # 0 * base is the identity, stored as None
    assert prover_backend.fixed_base_muls(arith, base, []) == []


def test_fixed_base_in_chunks(prover_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C batch is called per chunk of scalars: any split gives the same points."""
    arith = get_arith(BN254, 1)
    base = arith.from_py_ecc(BN254.G1)
    scalars = [0, 5, 1, BN254.r - 1, 77, 0, 3]
    expected = prover_backend.fixed_base_muls(arith, base, scalars)
    for chunk in (1, 2, 3):
        monkeypatch.setattr(native, "_FIXED_BASE_CHUNK", chunk)
        assert prover_backend.fixed_base_muls(arith, base, scalars) == expected


def test_invalid_fixed_base_inputs(prover_backend: Any) -> None:
    g1 = get_arith(BN254, 1)
    base = g1.from_py_ecc(BN254.G1)
    with pytest.raises(ValueError, match="outside"):
        prover_backend.fixed_base_muls(g1, base, [BN254.r if prover_backend.name == "mcl" else 1 << 254])
    with pytest.raises(ValueError, match="outside"):
        prover_backend.fixed_base_muls(g1, base, [-1])
    with pytest.raises(ValueError, match="identity"):
        prover_backend.fixed_base_muls(g1, None, [1])


def test_same_key_bytes_whatever_the_backend(prover_backend: Any, tmp_path: Any) -> None:
    """The same toxic waste gives the same key file on every backend (the reference's bytes)."""
    cs = build_mul_add(3, 11, 5)
    waste = ToxicWaste(tau=1234567, alpha=22, beta=333, gamma=4444, delta=55555)
    ours = generate_proving_key(cs.constraints, cs.n_vars, cs.n_public, cs.curve, waste, backend=prover_backend)
    reference = generate_proving_key(cs.constraints, cs.n_vars, cs.n_public, cs.curve, waste, backend=PyEccProver())
    save_proving_key(ours, tmp_path / "ours.bin")
    save_proving_key(reference, tmp_path / "reference.bin")
    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "reference.bin").read_bytes()
    # and a proof made with it (the backend's MSMs and NTTs) is the reference's proof
    assert prove(ours, cs, reproducible_seed=3, backend=prover_backend) == prove(reference, cs, reproducible_seed=3, backend=PyEccProver())


@needs_mcl
def test_setup_on_the_configured_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """setup() without a backend uses the configured one (the CLI's --backend, ROLLUP_BACKEND)."""
    cs = build_mul_add(2, 9, 4)
    calls: list[str] = []
    original = MclProver.fixed_base_muls

    def spy(self: MclProver, *args: Any) -> Any:
        calls.append(self.name)
        return original(self, *args)

    monkeypatch.setattr(MclProver, "fixed_base_muls", spy)
    monkeypatch.setenv(backends.ENV_VAR, "mcl")
    key = setup(cs, seed="configured")
    assert calls == ["mcl", "mcl"]  # G1, then G2
    monkeypatch.setenv(backends.ENV_VAR, "py_ecc")
    assert setup(cs, seed="configured").a_query == key.a_query and calls == ["mcl", "mcl"]


def test_key_loaded_for_one_backend(prover_backend: Any, tmp_path: Any) -> None:
    """A proving worker's key: the query points read straight into the backend's form."""
    from prover.setup import InvalidProvingKey, load_proving_key

    cs = build_mul_add(4, 6, 1)
    pk = setup(cs, seed="worker-key", backend=PyEccProver())
    path = tmp_path / "pk.bin"
    save_proving_key(pk, path)
    light = load_proving_key(path, prepared_for=prover_backend)
    assert light.only_prepared == prover_backend.name and light.a_query == [] and light.transcript is None
    assert light.vk == pk.vk and light.constraints == pk.constraints
    assert prove(light, cs, reproducible_seed=4, backend=prover_backend) == prove(pk, cs, reproducible_seed=4, backend=PyEccProver())
    other = PyEccProver() if prover_backend.name != "py_ecc" else MclProver()
    if other.name == "py_ecc" or backends.is_installed("mcl"):
        with pytest.raises(InvalidProvingKey, match=f"loaded for backend {prover_backend.name} only"):
            prove(light, cs, backend=other)
    with pytest.raises(InvalidProvingKey, match="cannot be saved"):
        save_proving_key(light, tmp_path / "again.bin")
    # a point of a_query moved off the curve (its y + 1) is refused
    g1 = get_arith(BN254, 1)
    point = next(p for p in pk.a_query if p is not None)
    encoded = point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")
    data = path.read_bytes()
    assert data.count(encoded) >= 1 and g1.is_on_curve(point)
    path.write_bytes(data.replace(encoded, point[0].to_bytes(32, "big") + (point[1] + 1).to_bytes(32, "big"), 1))
    with pytest.raises(InvalidProvingKey, match="not on the curve"):
        load_proving_key(path, prepared_for=prover_backend)
    # and a coordinate >= q, with the same residue, too
    path.write_bytes(data.replace(encoded, (point[0] + BN254.q).to_bytes(32, "big") + point[1].to_bytes(32, "big"), 1))
    if prover_backend.name == "mcl":
        with pytest.raises(InvalidProvingKey, match="not on the curve"):
            load_proving_key(path, prepared_for=prover_backend)
