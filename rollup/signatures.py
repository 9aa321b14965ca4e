"""The signature pass: every transaction's hash (EIP-712 digest) and who signed it, in this process
or in chunks on an executor's workers, with the same result.

Shared by every execution mode (rollup/modes/); imports nothing of the node.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from rollup.executors import get_executor_workers
from verifier.encoding import (
    InvalidSignature,
    compute_checksum_address,
    compute_signing_digest,
    get_signature_fields,
    is_l2_signed,
    recover_address_bytes,
)
from verifier.l2auth import compute_signed_words, compute_tx_message, get_domain_tag, verify_l2_signatures
from verifier.wire import SigningDomain

# L2 signatures are batch-verified per chunk, cheaper per signature the larger the chunk, but a
# larger chunk raises a worker's memory peak. On the 10k-account L2-signed benchmark (pipelined
# mode, CPU of every process against the sequential node's; workers' memory added to its peak):
# 16 chunks a worker 1.27x CPU, +24%; 8 a worker 1.21x, +30%; 4 a worker 1.16x, +37% (and the
# sharded mode after this pass over 50%); the wall time the same within noise; 2 a worker left
# too little to pipeline
SIGNATURE_CHUNKS_PER_WORKER = 8
MIN_SIGNATURE_CHUNK = 64


@dataclass(frozen=True)
class SignatureCheck:
    """Result of the signature pass over one transaction: its hash and signers (recovered addresses,
    verified L2 key ids), or why its signatures are refused (then the transaction is rejected
    without executing)."""

    tx_hash: str
    signers: tuple[str | int, ...] | None  # addresses (Ethereum signatures) or key ids (L2 signatures)
    error: str | None = None


def check_signatures(transactions: Sequence, domain: SigningDomain, executor: Executor | None = None) -> list[SignatureCheck]:
    """Hash every transaction (EIP-712 digest) and check who signed it (as `verifier.l2auth.check_signers`
    does one by one: recovered addresses of Ethereum signatures, key ids of verified L2 signatures,
    here batch-verified: `check_signature_chunk`).

    With an executor, the checks (the costly part: about 80 us per Ethereum recovery and 250 us
    per L2 verification, against 4 us for the digest) run in chunks on its workers; only digests,
    record words and signature strings travel. The result is identical to the sequential pass:
    the same per-signature checks, results kept in order.
    """
    if executor is None:
        # the workers' function on the whole batch: L2 signatures batch-verified, as in parallel
        digests = [compute_signing_digest(tx, domain) for tx in transactions]
        checked = check_signature_chunk(get_domain_tag(domain), build_signature_jobs(transactions, digests))
        return to_signature_checks(digests, checked)
    return [check for _, chunk_checks in iter_signature_checks(transactions, domain, executor) for check in chunk_checks]


def iter_signature_checks(transactions: Sequence, domain: SigningDomain, executor: Executor) -> Iterator[tuple[int, list[SignatureCheck]]]:
    """The parallel signature pass, chunk by chunk in batch order: yields (start index, checks).

    Pipelined: workers check chunk k while this process hashes and packs chunk k+1, and this
    process consumes chunk k (unpacking it, or executing it: the pipelined mode, rollup/modes/pipelined.py)
    while they work on later ones."""
    size = compute_signature_chunk_size(len(transactions), get_executor_workers(executor))
    tag = get_domain_tag(domain)
    pending: list[tuple[int, list[bytes], Future]] = []
    try:
        for start in range(0, len(transactions), size):
            chunk = transactions[start : start + size]
            digests = [compute_signing_digest(tx, domain) for tx in chunk]
            pending.append((start, digests, executor.submit(check_packed_signature_chunk, pack_signature_jobs(chunk, digests, tag))))
        for start, digests, future in pending:
            yield start, to_signature_checks(digests, pickle.loads(future.result()))
    finally:
        for _, _, future in pending:
            future.cancel()


def to_signature_checks(digests: Sequence[bytes], checked: Sequence[tuple[Any, str | None]]) -> list[SignatureCheck]:
    return [
        SignatureCheck("0x" + d.hex(), None if raw is None else tuple(_get_signer(v) for v in raw), error)
        for d, (raw, error) in zip(digests, checked, strict=True)
    ]


def _get_signer(value: bytes | int) -> str | int:
    """A worker's answer for one signature: 20 address bytes (checksummed here) or a key id."""
    return value if value.__class__ is int else compute_checksum_address(value)


def pack_signature_jobs(chunk: Sequence, digests: Sequence[bytes], tag: int) -> bytes:
    """(domain tag, jobs) as one bytes object made by the C pickler, a job per transaction:
    (digest, signatures, record words for L2 signatures or None). The process pool's dill pickler
    is pure Python and, on 50k small tuples, costs more than the recovery it moves to another core."""
    return pickle.dumps((tag, build_signature_jobs(chunk, digests)), protocol=pickle.HIGHEST_PROTOCOL)


def build_signature_jobs(chunk: Sequence, digests: Sequence[bytes]) -> list[tuple[bytes, tuple[str, ...], tuple[tuple[int, ...], ...] | None]]:
    """(digest, signatures, for L2 signatures the words each signs, else None) per transaction."""
    return [
        (d, tuple(getattr(tx, n) for n in get_signature_fields(type(tx))), compute_signed_words(tx) if is_l2_signed(type(tx)) else None)
        for d, tx in zip(digests, chunk)
    ]


def compute_signature_chunk_size(n_transactions: int, workers: int) -> int:
    """A few chunks per worker even out a worker slowed by its neighbours and let the pipelined
    mode start executing early; a floor keeps the per-task overhead (0.1 ms in a pool, 2 ms on
    Dask) small against 80 us a transaction."""
    return max(MIN_SIGNATURE_CHUNK, -(-n_transactions // (workers * SIGNATURE_CHUNKS_PER_WORKER)))


def check_packed_signature_chunk(data: bytes) -> bytes:
    """`check_signature_chunk` on a pickled chunk, its result pickled (runs on a worker)."""
    return pickle.dumps(check_signature_chunk(*pickle.loads(data)), protocol=pickle.HIGHEST_PROTOCOL)


SignerValues = tuple["bytes | int", ...]


def check_signature_chunk(tag: int, jobs: Sequence[tuple[bytes, tuple[str, ...], Sequence[Sequence[int]] | None]]) -> list[tuple[SignerValues | None, str | None]]:
    """Runs on a worker: (signers, None) or (None, why) per (digest, signatures, signed words) job,
    as `check_signers` would give for the transaction but with Ethereum signers as their 20
    address bytes. The checksums are left to the coordinator, whose cache holds every account's
    address from loading the state: a worker's cache starts cold in every new pool, and filling
    it cost each worker about a tenth of its recovery time."""
    results: list[tuple[SignerValues | None, str | None]] = []
    l2_items: list[tuple[int, str]] = []  # (message, signature) of every L2 signature, in job order
    for digest, signatures, words in jobs:
        if words is not None:
            l2_items += [(compute_tx_message(tag, w), s) for w, s in zip(words, signatures)]
            results.append((None, None))  # filled below
            continue
        try:
            results.append((tuple(recover_address_bytes(digest, s) for s in signatures), None))
        except InvalidSignature as exc:
            results.append((None, f"invalid signature: {exc}"))
    # the L2 signatures checked together (batch verification), then handed back to their jobs
    answers = iter(verify_l2_signatures(l2_items))
    for index, (_, signatures, words) in enumerate(jobs):
        if words is not None:
            values = [next(answers) for _ in signatures]
            refused = next((v for v in values if v.__class__ is str), None)
            results[index] = (None, f"invalid signature: {refused}") if refused is not None else (tuple(values), None)
    return results

