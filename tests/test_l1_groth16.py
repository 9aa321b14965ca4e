"""The on-chain Groth16 batch verifier (contracts/vy/Groth16Verifier.vy) on real segment proofs.

One node is set up once per session with 1-slot segment keys and one proven batch of two deposits
(two segments, so two real proofs of the segment circuit), as tests/test_batch_verifier.py does.
The verifier is deployed once on py-evm; every case calls it (views: nothing changes on chain).
Each pairing check costs py-evm about 0.2 s per pair, so the cases share calls where they can.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from typer.testing import CliRunner

from contracts.build import compile_contract
from contracts.chain import L1, L1Revert
from contracts.groth16 import (
    IC_PER_CHUNK,
    MAX_CHUNK_BYTES,
    combine_inputs,
    deploy_groth16_verifier,
    encode_proof_for_evm,
    encode_verifying_key,
)
from rollup.cli.main import app
from rollup.fixtures import WorkloadSpec, generate_workload
from verifier.curve import BN254
from verifier.evm import encode_g1, encode_g2
from verifier.groth16 import Proof, WrongInputCount, prepare_verifying_key, verify_proof
from verifier.published import read_published
from verifier.segment import SegmentShape, count_public_inputs
from verifier.snarkjs import parse_proof, parse_public_inputs, parse_verifying_key

runner = CliRunner()
SEED = 3
GAS = 10_000_000
EIP170_MAX_CODE = 24_576

# Measures what a calling contract (the settlement contract) pays for each entry point.
GAS_PROBE = """# pragma version 0.4.3
import params

interface Verifier:
    def compute_vk_x(inputs: DynArray[uint256, params.N_PUBLIC]) -> uint256[2]: view
    def verify_batch(proofs: DynArray[uint256[8], 16], vk_xs: DynArray[uint256[2], 16]) -> bool: view

@external
@view
def gas_compute_vk_x(verifier: address, inputs: DynArray[uint256, params.N_PUBLIC]) -> uint256:
    before: uint256 = msg.gas
    vk_x: uint256[2] = staticcall Verifier(verifier).compute_vk_x(inputs)
    return before - msg.gas

@external
@view
def gas_verify_batch(verifier: address, proofs: DynArray[uint256[8], 16], vk_xs: DynArray[uint256[2], 16]) -> uint256:
    before: uint256 = msg.gas
    ok: bool = staticcall Verifier(verifier).verify_batch(proofs, vk_xs)
    assert ok, "batch does not verify"
    return before - msg.gas
"""


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="session")
def proven(tmp_path_factory) -> dict[str, Any]:
    """Two real proofs of the 1-slot segment circuit (a batch of two deposits), with key and inputs."""
    root = tmp_path_factory.mktemp("l1_groth16")
    workload = generate_workload(WorkloadSpec(accounts=2, txs=1, seed=SEED), workers=1)
    (root / "genesis.json").write_text(workload.genesis.model_dump_json())
    home = root / "home"
    run("init", "--home", str(home), "--genesis", str(root / "genesis.json"), "--json")
    txs = root / "txs.jsonl"
    txs.write_text("".join(tx.model_dump_json() + "\n" for tx in workload.transactions[:2]))
    assert json.loads(run("submit", str(txs), "--home", str(home), "--executor", "serial", "--json"))["accepted"] == 2
    run("setup", "--slots", "1", "--home", str(home), "--json")
    assert json.loads(run("prove", "--home", str(home), "--executor", "serial", "--json"))["proven"] == 2
    run("publish", "1", str(root / "published"), "--home", str(home), "--json")
    published = read_published(root / "published")
    return {
        "shape": SegmentShape.from_genesis(published.batch.genesis, 1),
        "vk": parse_verifying_key(published.vk),
        "proofs": [parse_proof(p) for p in published.proofs],
        "inputs": [parse_public_inputs(p) for p in published.public],
    }


@pytest.fixture(scope="session")
def chain(proven) -> dict[str, Any]:
    l1 = L1.embedded()
    verifier = deploy_groth16_verifier(l1, proven["vk"], proven["shape"])
    vk_xs = [list(verifier.functions.compute_vk_x(inputs).call({"gas": GAS})) for inputs in proven["inputs"]]
    return {"l1": l1, "verifier": verifier, "vk_xs": vk_xs, "proofs": [encode_proof_for_evm(p) for p in proven["proofs"]]}


def verify(chain: dict[str, Any], proofs: list[list[int]], vk_xs: list[list[int]]) -> bool:
    return chain["verifier"].functions.verify_batch(proofs, vk_xs).call({"gas": GAS})


def reject(call: Any, reason: str) -> None:
    """The call reverts and its reason contains `reason`."""
    with pytest.raises(TransactionFailed) as info:
        call.call({"gas": GAS})
    assert reason in str(info.value), str(info.value)


def words_g1(point: Any) -> list[int]:
    data = encode_g1(point)
    return [int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")]


def words_g2(point: Any) -> list[int]:
    data = encode_g2(point)
    return [int.from_bytes(data[i : i + 32], "big") for i in range(0, 128, 32)]


def sqrt_fq2(a: Any) -> Any | None:
    """A square root in Fq2 = Fq[i]/(i^2 + 1), q = 3 mod 4 (Adj and Rodriguez-Henriquez, alg. 9)."""
    q, fq2 = BN254.q, BN254.FQ2
    a1 = a ** ((q - 3) // 4)
    alpha = a1 * a1 * a
    if alpha ** q * alpha == -fq2.one():
        return None
    x0 = a1 * a
    x = fq2([0, 1]) * x0 if alpha == -fq2.one() else (fq2.one() + alpha) ** ((q - 1) // 2) * x0
    return x if x * x == a else None


def find_twist_point_outside_g2() -> Any:
    """A point on the twist E'(Fq2) that is not in the order-r subgroup G2 (the twist's cofactor is
    about q, so almost every twist point is one)."""
    b2 = BN254.module.b2
    for k in range(1, 100):
        x = BN254.FQ2([k, 1])
        y = sqrt_fq2(x**3 + b2)
        if y is None:
            continue
        point = (x, y, BN254.FQ2.one())
        if BN254.is_on_curve_g2(point) and not BN254.is_in_subgroup(point):
            return point
    raise AssertionError("no twist point outside G2 found")


# --- deployment -----------------------------------------------------------------------------------


def test_runtime_fits_eip170_and_key_is_chunked(proven, chain):
    compiled = compile_contract("Groth16Verifier", proven["shape"])
    assert compiled.runtime_size <= EIP170_MAX_CODE
    key = encode_verifying_key(proven["vk"])
    n_ic = count_public_inputs(proven["shape"]) + 1
    assert len(key.ic_blobs) == -(-n_ic // IC_PER_CHUNK) and all(len(b) <= MAX_CHUNK_BYTES for b in key.ic_blobs)
    assert b"".join(key.ic_blobs) == b"".join(encode_g1(p) for p in proven["vk"].gamma_abc_g1)
    verifier = chain["verifier"].functions
    assert verifier.N_IC().call() == n_ic and verifier.IC_PER_CHUNK().call() == IC_PER_CHUNK
    assert [verifier.ALPHA1(i).call() for i in range(2)] == key.alpha1
    assert [verifier.BETA2(i).call() for i in range(4)] == key.beta2


def test_invalid_key_for_another_shape(proven, chain):
    # the contract is compiled for one shape: a key with another input count is refused before deploying
    with pytest.raises(WrongInputCount, match="public inputs"):
        deploy_groth16_verifier(chain["l1"], proven["vk"], SegmentShape(2))
    # the constructor checks it too
    l1, key = chain["l1"], encode_verifying_key(proven["vk"])
    chunks = [l1.deploy_data(blob) for blob in key.ic_blobs]
    compiled = compile_contract("Groth16Verifier", proven["shape"])
    with pytest.raises(L1Revert, match="IC must hold N_PUBLIC"):
        l1.deploy(compiled, key.alpha1, key.beta2, key.gamma2, key.delta2, chunks, len(proven["vk"].gamma_abc_g1) - 1, gas=3_000_000)
    # chunks that do not hold the n_ic points
    with pytest.raises(L1Revert, match="do not hold n_ic points"):
        l1.deploy(compiled, key.alpha1, key.beta2, key.gamma2, key.delta2, chunks[:1], len(proven["vk"].gamma_abc_g1), gas=3_000_000)
    # a G2 point of the key off the twist
    bad_gamma = [*key.gamma2[:3], (key.gamma2[3] + 1) % BN254.q]
    with pytest.raises(L1Revert, match="gamma is not in G2"):
        l1.deploy(compiled, key.alpha1, key.beta2, bad_gamma, key.delta2, chunks, len(proven["vk"].gamma_abc_g1), gas=3_000_000)


# --- compute_vk_x ---------------------------------------------------------------------------------


def test_compute_vk_x_matches_off_chain(proven, chain):
    for inputs, vk_x in zip(proven["inputs"], chain["vk_xs"]):
        assert vk_x == words_g1(BN254.msm(proven["vk"].gamma_abc_g1, [1, *inputs]))
    # inputs that are not 0 or 1 everywhere, including the last word (a partial zero-skip block)
    n = count_public_inputs(proven["shape"])
    inputs = [(7 * j + 3) % 5 for j in range(n)]
    inputs[-1] = BN254.r - 1
    expected = words_g1(BN254.msm(proven["vk"].gamma_abc_g1, [1, *inputs]))
    assert list(chain["verifier"].functions.compute_vk_x(inputs).call({"gas": GAS})) == expected


def test_invalid_input_aliased_by_r(proven, chain):
    inputs = proven["inputs"][0]
    nonzero = next(j for j, x in enumerate(inputs) if x > 1)
    aliased = list(inputs)
    aliased[nonzero] += BN254.r  # the same field element, another integer: must be rejected, not reduced
    reject(chain["verifier"].functions.compute_vk_x(aliased), f"public input {nonzero} >= r")
    zero = inputs.index(0)
    aliased = list(inputs)
    aliased[zero] = BN254.r
    reject(chain["verifier"].functions.compute_vk_x(aliased), f"public input {zero} >= r")


def test_invalid_input_count(proven, chain):
    n = count_public_inputs(proven["shape"])
    reject(chain["verifier"].functions.compute_vk_x(proven["inputs"][0][:-1]), f"expected {n} public inputs, got {n - 1}")
    # more than the array's bound: the ABI decoder refuses it (no reason)
    with pytest.raises(TransactionFailed):
        chain["verifier"].functions.compute_vk_x([*proven["inputs"][0], 0]).call({"gas": GAS})


# --- verify_batch ---------------------------------------------------------------------------------


def test_single_and_batch_of_two_verify(proven, chain):
    # the off-chain verifier agrees on each
    pvk = prepare_verifying_key(proven["vk"])
    assert all(verify_proof(pvk, p, x) for p, x in zip(proven["proofs"], proven["inputs"]))
    proofs, vk_xs = chain["proofs"], chain["vk_xs"]
    assert verify(chain, proofs[:1], vk_xs[:1]) is True
    assert verify(chain, proofs, vk_xs) is True


def test_tampered_proof_returns_false(proven, chain):
    proof = proven["proofs"][1]
    # A moved to another valid point of G1: well-formed, so False rather than a revert
    tampered = encode_proof_for_evm(Proof(BN254.add(proof.a, BN254.G1), proof.b, proof.c))
    assert verify(chain, [tampered], chain["vk_xs"][1:]) is False
    # second in a batch: weighted by a Fiat-Shamir rho != 1
    assert verify(chain, [chain["proofs"][0], tampered], chain["vk_xs"]) is False


def test_swapped_inputs_return_false(chain):
    proofs, vk_xs = chain["proofs"], chain["vk_xs"]
    assert verify(chain, proofs[:1], vk_xs[1:]) is False
    assert verify(chain, proofs, vk_xs[::-1]) is False


def test_invalid_batch_shape(chain):
    verifier = chain["verifier"].functions
    reject(verifier.verify_batch([], []), "empty batch")
    reject(verifier.verify_batch(chain["proofs"], chain["vk_xs"][:1]), "one vk_x per proof")


def test_invalid_points_revert_with_reason(chain):
    verifier, good = chain["verifier"].functions, chain["proofs"][0]
    q = BN254.q

    def with_words(changes: dict[int, int]) -> list[int]:
        return [changes.get(w, v) for w, v in enumerate(good)]

    # A off the curve: first proof (rho = 1, checked by ecAdd) and second (scaled by ecMul)
    off_a = with_words({1: (good[1] + 1) % q})
    reject(verifier.verify_batch([off_a], chain["vk_xs"][:1]), "proof 0: A is not on the curve")
    reject(verifier.verify_batch([good, off_a], chain["vk_xs"]), "proof 1: A is not on the curve")
    off_c = with_words({7: (good[7] + 1) % q})
    reject(verifier.verify_batch([good, off_c], chain["vk_xs"]), "proof 1: C is not on the curve")
    # a coordinate that is not a canonical field element
    reject(verifier.verify_batch([with_words({0: good[0] + q})], chain["vk_xs"][:1]), "proof 0: a coordinate is not below q")
    # the identity as A
    reject(verifier.verify_batch([with_words({0: 0, 1: 0})], chain["vk_xs"][:1]), "proof 0: A is the point at infinity")
    # vk_x off the curve
    bad_vk_x = [chain["vk_xs"][0][0], (chain["vk_xs"][0][1] + 1) % q]
    reject(verifier.verify_batch([good], [bad_vk_x]), "vk_x 0 is not on the curve")


def test_invalid_b_off_twist_or_outside_g2(chain):
    verifier, good = chain["verifier"].functions, chain["proofs"]
    # B off the twist
    off_twist = [*good[1][:5], (good[1][5] + 1) % BN254.q, *good[1][6:]]
    reject(verifier.verify_batch([good[0], off_twist], chain["vk_xs"]), "proof 1: B is not in G2")
    # B on the twist but outside the order-r subgroup: py-evm's 0x08 multiplies B by r and fails,
    # as EIP-197 requires (a precompile without the check would have returned False or True)
    outside = find_twist_point_outside_g2()
    no_subgroup = [*good[0][:2], *words_g2(outside), *good[0][6:]]
    reject(verifier.verify_batch([no_subgroup], chain["vk_xs"][:1]), "proof 0: B is not in G2")


# --- verify_weighted: one multi-scalar multiplication for the batch -------------------------------


def weighted_vk(chain: dict[str, Any], inputs: list[list[int]], rhos: list[int]) -> list[int]:
    fn = chain["verifier"].get_function_by_signature("compute_vk_x(uint256[],uint256)")
    return list(fn(*combine_inputs(inputs, rhos, BN254.r)).call({"gas": GAS}))


def test_weighted_batch_verifies_with_one_msm(proven, chain):
    rhos = [1, 2**127 + 5]
    vk_sum = weighted_vk(chain, proven["inputs"], rhos)
    # the combined point is sum_i rho_i vk_x_i
    expected = BN254.add(*(BN254.multiply(BN254.msm(proven["vk"].gamma_abc_g1, [1, *x]), rho) for x, rho in zip(proven["inputs"], rhos)))
    assert vk_sum == words_g1(expected)
    verifier = chain["verifier"].functions
    assert verifier.verify_weighted(chain["proofs"], rhos, vk_sum).call({"gas": GAS}) is True
    # the inputs of one proof changed by one unit: the combination no longer matches the proofs
    moved = [list(proven["inputs"][0]), proven["inputs"][1]]
    moved[0][5] = (moved[0][5] + 1) % BN254.r
    assert verifier.verify_weighted(chain["proofs"], rhos, weighted_vk(chain, moved, rhos)).call({"gas": GAS}) is False
    # weights that differ from those the inputs were combined with
    assert verifier.verify_weighted(chain["proofs"], [1, rhos[1] + 1], vk_sum).call({"gas": GAS}) is False


def test_invalid_weights_and_combined_inputs(proven, chain):
    verifier, proofs = chain["verifier"].functions, chain["proofs"]
    vk_sum = weighted_vk(chain, proven["inputs"], [1, 3])
    reject(verifier.verify_weighted([], [], vk_sum), "empty batch")
    reject(verifier.verify_weighted(proofs, [1], vk_sum), "one weight per proof")
    # a zero weight would leave its proof unchecked; a weight >= r aliases a smaller one
    reject(verifier.verify_weighted(proofs, [1, 0], vk_sum), "weight 1 is not in [1, r)")
    reject(verifier.verify_weighted(proofs, [BN254.r + 1, 3], vk_sum), "weight 0 is not in [1, r)")
    reject(verifier.verify_weighted(proofs, [1, 3], [vk_sum[0] + BN254.q, vk_sum[1]]), "vk_sum: a coordinate is not below q")
    fn = chain["verifier"].get_function_by_signature("compute_vk_x(uint256[],uint256)")
    reject(fn(combine_inputs(proven["inputs"], [1, 3], BN254.r)[0], BN254.r + 4), "IC_0 scalar is >= r")


def test_gas_for_a_calling_contract(proven, chain, tmp_path):
    """What the settlement contract pays per segment (compute_vk_x) and per batch (verify_batch)."""
    (tmp_path / "GasProbe.vy").write_text(GAS_PROBE)
    probe = chain["l1"].deploy(compile_contract("GasProbe", proven["shape"], extra_dirs=(tmp_path,)), gas=3_000_000)
    address = chain["verifier"].address
    vk_x_gas = [probe.functions.gas_compute_vk_x(address, x).call({"gas": GAS}) for x in proven["inputs"]]
    batch_gas = probe.functions.gas_verify_batch(address, chain["proofs"], chain["vk_xs"]).call({"gas": GAS})
    # zero inputs are skipped and inputs equal to 1 cost an ecAdd: far below one ecMul per input
    n_public = count_public_inputs(proven["shape"])
    assert all(gas < 150_000 for gas in vk_x_gas) and max(vk_x_gas) < n_public * 6000 // 10
    # k = 2: five pairs (45,000 + 5 x 34,000 gas in the precompile), three ecMul for the weights
    assert 215_000 < batch_gas < 215_000 + 4 * 6000 + 30_000
