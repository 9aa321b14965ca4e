"""keccak-256 as the EVM computes it (not NIST SHA3-256, which pads differently): the verifier's one
keccak (EIP-712 digests, key hashes, the deposit queue's rolling hash)."""

from __future__ import annotations

from typing import Any

# safe-pysha3 is a C keccak about 7x faster per call than pycryptodome
try:
    from sha3 import keccak_256 as _new_keccak

    KECCAK_BACKEND = "safe-pysha3"
except ImportError:  # pragma: no cover - safe-pysha3 is a declared dependency
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def _new_keccak(data: bytes) -> Any:
        return _pycryptodome_keccak.new(digest_bits=256, data=data)

    KECCAK_BACKEND = "pycryptodome"


def keccak256(data: bytes) -> bytes:
    return _new_keccak(data).digest()
