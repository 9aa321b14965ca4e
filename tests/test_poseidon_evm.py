"""circomlibjs's EVM Poseidon contracts (contracts/poseidon.py) on py-evm, against verifier.poseidon."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from contracts.chain import L1
from contracts.poseidon import call_poseidon, deploy_poseidon, get_evm_arities, get_hash_function, get_poseidon_contract
from verifier.poseidon import R, poseidon

ROOT = Path(__file__).resolve().parent.parent
VENDORED = ROOT / "contracts" / "data" / "poseidon_evm.json"
needs_circomlibjs = pytest.mark.skipif(
    not (ROOT / "node_modules" / "circomlibjs" / "package.json").exists(),
    reason="circomlibjs not installed: run `npm ci` in the repository root",
)


@pytest.fixture(scope="module")
def deployed() -> tuple[L1, dict[int, object]]:
    l1 = L1.embedded()
    return l1, {n: deploy_poseidon(l1, n) for n in get_evm_arities()}


def test_arities_are_what_circomlibjs_can_generate() -> None:
    assert get_evm_arities() == (1, 2, 3, 4, 5, 6)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_contract_hash_equals_poseidon(deployed, n: int) -> None:
    l1, contracts = deployed
    rng = random.Random(n)
    for inputs in ([0] * n, [R - 1] * n, [rng.randrange(R) for _ in range(n)], [rng.randrange(R) for _ in range(n)]):
        assert call_poseidon(contracts[n], inputs) == poseidon(inputs)
    # what was deployed is the vendored code, which fits EIP-170
    code = l1.w3.eth.get_code(contracts[n].address)
    assert len(code) == get_poseidon_contract(n).runtime_size <= 24_576


def test_bytes32_overload(deployed) -> None:
    _, contracts = deployed
    fn = contracts[2].get_function_by_signature("poseidon(bytes32[2])")
    assert fn([(1).to_bytes(32, "big"), (2).to_bytes(32, "big")]).call() == poseidon([1, 2]).to_bytes(32, "big")


def test_contract_reduces_inputs_mod_r_so_callers_must_check(deployed) -> None:
    # the contract's first addmod reduces: x + r hashes as x (why call_poseidon checks inputs)
    _, contracts = deployed
    assert get_hash_function(contracts[2], 2)([R + 1, 2]).call() == poseidon([1, 2])
    with pytest.raises(ValueError, match="Poseidon input 0 = .* is not a field element"):
        call_poseidon(contracts[2], [R + 1, 2])


@pytest.mark.parametrize("n", [0, 7, 16])
def test_invalid_arity(n: int) -> None:
    with pytest.raises(ValueError, match=rf"no EVM Poseidon for {n} inputs: circomlibjs generates \(1, 2, 3, 4, 5, 6\)"):
        get_poseidon_contract(n)


@pytest.mark.interop
@needs_circomlibjs
def test_vendored_bytecode_regenerates_from_circomlibjs(tmp_path: Path) -> None:
    out = tmp_path / "poseidon_evm.json"
    subprocess.run(["node", str(ROOT / "scripts" / "gen_poseidon_contracts.mjs"), str(out)], check=True, cwd=ROOT, timeout=120, capture_output=True)
    assert out.read_bytes() == VENDORED.read_bytes()
