"""Compile Vyper sources in process (PyPI's `vyper`): the shared compiled form and a compiler for
sources that need no generated module (the EVM Poseidon harnesses, test harnesses).

The settlement contracts are compiled by `contracts/transition_build.py`, which renders their
generated modules (curve moduli from py_ecc, the circuit's shape) first.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vyper
from vyper.compiler.input_bundle import FilesystemInputBundle

VYPER_VERSION = vyper.__version__


@dataclass(frozen=True)
class Compiled:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed init code
    runtime_size: int  # bytes of deployed code (EIP-170 caps it at 24,576)


def compile_files(name: str, files: dict[str, str]) -> Compiled:
    """Compile `{name}.vy` out of `files` (file name -> source), in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="rollup-vy-") as tmp:
        root = Path(tmp)
        for file_name, text in files.items():
            (root / file_name).write_text(text)
        bundle = FilesystemInputBundle([root])
        out = vyper.compile_from_file_input(
            bundle.load_file(Path(f"{name}.vy")), input_bundle=bundle, output_formats=["abi", "bytecode", "bytecode_runtime"]
        )
    return Compiled(name, out["abi"], out["bytecode"], (len(out["bytecode_runtime"]) - 2) // 2)


@functools.lru_cache(maxsize=32)
def _compile_dir(name: str, directory: Path, digest: str) -> Compiled:
    return compile_files(name, {p.name: p.read_text() for p in sorted(directory.glob("*.vy"))})


def compile_contract(name: str, directory: Path) -> Compiled:
    """Compile `{name}.vy` from `directory` (with the other sources there); cached per process on
    the sources' hash."""
    sources = sorted(directory.glob("*.vy"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()
    return _compile_dir(name, directory, digest)
