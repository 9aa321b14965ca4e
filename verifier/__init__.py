"""The trusted core: checks proofs and recomputes state roots.

Depends on py_ecc, eth-hash/eth-keys and the wire formats only; imports nothing from `rollup`
or `prover`.
"""
