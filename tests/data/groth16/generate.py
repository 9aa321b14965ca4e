"""Regenerate the snarkjs-made Groth16 vectors in this folder (run from the repository root).

    .venv/bin/python tests/data/groth16/generate.py

Two tiny BN254 circuits and one BLS12-381 circuit, exported with prover/export.py, set up and proven by snarkjs 0.7.6 with
fixed entropy (the proofs themselves are randomised by snarkjs: rerunning changes them). They let
the verifier's tests run against another implementation's proofs without node installed.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

from prover.export import write_r1cs, write_wtns
from verifier.curve import BLS12_381, BN254, Curve

HERE = Path(__file__).parent
SNARKJS = Path("node_modules/.bin/snarkjs").resolve()
R = BN254.r


def mul_add(x: int, y: int, a: int, curve: Curve = BN254) -> SimpleNamespace:
    """out = (x*y + a) * x; public: out, a. Wires: 1 out, 2 a, 3 x, 4 y, 5 t = x*y."""
    t = x * y % curve.r
    out = (t + a) * x % curve.r
    return SimpleNamespace(curve=curve, n_public=2, n_vars=6,
                           constraints=[({3: 1}, {4: 1}, {5: 1}), ({5: 1, 2: 1}, {3: 1}, {1: 1})],
                           witness=[1, out, a, x, y, t])


def square_mul(x: int, y: int, a: int) -> SimpleNamespace:
    """out = x*x*y + a; public: out, a. Wires: 1 out, 2 a, 3 x, 4 y, 5 t = x*x."""
    t = x * x % R
    out = (t * y + a) % R
    return SimpleNamespace(curve=BN254, n_public=2, n_vars=6,
                           constraints=[({3: 1}, {3: 1}, {5: 1}), ({5: 1}, {4: 1}, {1: 1, 2: R - 1})],
                           witness=[1, out, a, x, y, t])


def run(*args: str, cwd: Path) -> None:
    subprocess.run([str(SNARKJS), *args], cwd=cwd, check=True, capture_output=True)


def make_vectors(name: str, witnesses: list[SimpleNamespace], tmp: Path, ptau: Path) -> None:
    out = HERE / name
    out.mkdir(exist_ok=True)
    write_r1cs(witnesses[0], tmp / f"{name}.r1cs")
    run("groth16", "setup", f"{name}.r1cs", str(ptau), f"{name}_0.zkey", cwd=tmp)
    run("zkey", "beacon", f"{name}_0.zkey", f"{name}.zkey", "0102030405060708090a0b0c0d0e0f10", "10", cwd=tmp)
    run("zkey", "export", "verificationkey", f"{name}.zkey", str(out / "verification_key.json"), cwd=tmp)
    for i, cs in enumerate(witnesses):
        write_wtns(cs, tmp / f"{name}_{i}.wtns")
        run("groth16", "prove", f"{name}.zkey", f"{name}_{i}.wtns",
            str(out / f"proof_{i}.json"), str(out / f"public_{i}.json"), cwd=tmp)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run("powersoftau", "new", "bn128", "4", "p0.ptau", cwd=tmp)
        run("powersoftau", "contribute", "p0.ptau", "p1.ptau", "-e=fixed test entropy", "-name=test", cwd=tmp)
        run("powersoftau", "prepare", "phase2", "p1.ptau", "final.ptau", cwd=tmp)
        make_vectors("mul_add", [mul_add(3, 11, 5), mul_add(2, 7, 1), mul_add(10, 20, 30), mul_add(R - 1, 5, 9)],
                     tmp, tmp / "final.ptau")
        make_vectors("square_mul", [square_mul(4, 6, 8)], tmp, tmp / "final.ptau")
        run("powersoftau", "new", "bls12381", "4", "b0.ptau", cwd=tmp)
        run("powersoftau", "contribute", "b0.ptau", "b1.ptau", "-e=fixed test entropy", "-name=test", cwd=tmp)
        run("powersoftau", "prepare", "phase2", "b1.ptau", "bfinal.ptau", cwd=tmp)
        make_vectors("bls12381_mul_add", [mul_add(3, 11, 5, BLS12_381)], tmp, tmp / "bfinal.ptau")


if __name__ == "__main__":
    main()
