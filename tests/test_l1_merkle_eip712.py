"""The settlement contract's Merkle and EIP-712 modules (contracts/vy/merkle.vy, eip712.vy) on py-evm
against the Python verifier: same roots, same digests, same signers; malformed input reverts.

Each harness (tests/vy/) is compiled once and deployed on one embedded L1. Harness functions return
their result with the gas of the internal call (memory expansion excluded: a transaction pays it
once, at its high-water mark); `test_*_gas` print those numbers (run with -s to see them).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_keys.constants import SECPK1_N, SECPK1_P
from eth_tester.exceptions import TransactionFailed

from contracts import merkle_list
from contracts.build import compile_contract
from contracts.chain import L1
from contracts.eip712_args import (
    MAX_INSTRUMENTS,
    UnencodableTransaction,
    encode_oracle_update,
    encode_tx_words,
    split_signature,
)
from contracts.multiproof import MAX_BITMAP, MAX_KEYS, MAX_SIBLINGS, ProofTooLarge, to_evm_multiproof
from rollup.fixtures import WorkloadSpec, compute_malleable_twin, generate_workload
from rollup.merkle import SparseMerkleTree
from verifier.curve import BN254
from verifier.encoding import (
    DOMAIN_NAME,
    DOMAIN_TYPE,
    DOMAIN_VERSION,
    GLOBALS_KEY,
    compute_domain_separator,
    compute_encode_type,
    compute_signing_digest,
    compute_signing_digest_reference,
    get_eip712_types,
    get_signature_fields,
    instrument_key,
    recover_signers,
)
from verifier.merkle import (
    EMPTY_LEAF,
    InvalidProof,
    MultiProof,
    compute_root,
    compute_root_from_multiproof,
    default_hashes,
    keccak256,
)
from verifier.segment import SLOT_TYPES, SegmentShape
from verifier.wire import TRANSACTION_TYPES, OracleUpdate, SigningDomain

HARNESSES = Path(__file__).parent / "vy"
CALL = {"gas": 25_000_000}  # explicit gas: estimation would re-run every call
DEPTH = 32


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def l1() -> L1:
    return L1.embedded()


@pytest.fixture(scope="module")
def merkle(l1: L1) -> Any:
    return l1.deploy(compile_contract("MerkleHarness", SegmentShape(n_slots=1), extra_dirs=(HARNESSES,)))


@pytest.fixture(scope="module")
def eip712(l1: L1) -> Any:
    return l1.deploy(compile_contract("Eip712Harness", SegmentShape(n_slots=1), extra_dirs=(HARNESSES,)))


@pytest.fixture(scope="module")
def workload() -> Any:
    return generate_workload(WorkloadSpec(accounts=8, txs=120, seed=5), workers=1)


@pytest.fixture(scope="module")
def tree() -> SparseMerkleTree:
    """The state tree's layout: 2,000 dense accounts, 10 instruments, the globals leaf, and 200
    leaves anywhere (so that proofs also cross sparse regions)."""
    rng = random.Random(11)
    keys = list(range(2_000)) + [instrument_key(i) for i in range(10)] + [GLOBALS_KEY] + rng.sample(range(2**DEPTH), 200)
    t = SparseMerkleTree(DEPTH)
    t.update({k: keccak256(b"leaf" + k.to_bytes(32, "big")) for k in keys})
    return t


def get_revert_reason(fn: Any) -> str:
    with pytest.raises(TransactionFailed) as failure:
        fn.call(CALL)
    return str(failure.value.args[0]).removeprefix("execution reverted: ")


def compute_evm_root(merkle: Any, leaves: dict[int, bytes], proof: MultiProof) -> tuple[bytes, int]:
    keys, siblings, bitmap = to_evm_multiproof(proof)
    return merkle.functions.compute_multiproof_root(keys, [leaves[k] for k in keys], siblings, bitmap).call(CALL)


def pick_keys(tree: SparseMerkleTree, count: int, seed: int) -> list[int]:
    """`count` keys: present ones and absent ones, dense and far apart."""
    rng = random.Random(seed)
    present = rng.sample(sorted(tree), count - count // 4)
    absent = rng.sample(range(2_000, 2**DEPTH), count // 4)
    return sorted(set(present + absent))


# --- merkle.vy: multiproofs ---------------------------------------------------------------------


def test_bounds_agree_with_python(merkle: Any) -> None:
    bounds = merkle.functions.get_bounds().call(CALL)
    assert bounds == [MAX_KEYS, MAX_SIBLINGS, MAX_BITMAP, merkle_list.MAX_LIST, merkle_list.MAX_LIST_DEPTH]


@pytest.mark.parametrize("count", [1, 2, 10, 100, 256])
def test_multiproof_root_matches_python(merkle: Any, tree: SparseMerkleTree, count: int) -> None:
    keys = pick_keys(tree, count, seed=count)
    proof = tree.prove_many(keys)
    leaves = {k: tree.get(k) for k in keys}
    root, _ = compute_evm_root(merkle, leaves, proof)
    assert root == tree.root == compute_root_from_multiproof(leaves, proof)


def test_multiproof_after_leaves_give_the_new_root(merkle: Any, tree: SparseMerkleTree) -> None:
    """A state diff: the proof of the "before" leaves with the "after" leaves gives the new root."""
    keys = pick_keys(tree, 40, seed=3)
    proof = tree.prove_many(keys)
    after = {k: (EMPTY_LEAF if i % 5 == 0 else keccak256(b"after" + bytes([i]))) for i, k in enumerate(keys)}
    updated = tree.copy()
    updated.update(after)
    root, _ = compute_evm_root(merkle, after, proof)
    assert root == updated.root != tree.root


def test_empty_key_set(merkle: Any, tree: SparseMerkleTree) -> None:
    # no keys: the one slot is the root itself, the empty tree's default hash when its bit is 0
    assert merkle.functions.compute_multiproof_root([], [], [], [bytes(32)]).call(CALL)[0] == default_hashes(DEPTH)[DEPTH]
    proof = tree.prove_many([])
    assert compute_evm_root(merkle, {}, proof)[0] == tree.root


def test_default_hash_of_every_level(merkle: Any) -> None:
    """One key in an empty tree: its 32 slots all take default hashes, levels 0 to 31."""
    key, leaf = 0xDEADBEEF, keccak256(b"lonely")
    zero = default_hashes(DEPTH)
    root, _ = merkle.functions.compute_multiproof_root([key], [leaf], [], [bytes(32)]).call(CALL)
    assert root == compute_root(key, leaf, zero[:DEPTH], DEPTH)


def test_tampered_sibling_changes_the_root(merkle: Any, tree: SparseMerkleTree) -> None:
    keys = pick_keys(tree, 10, seed=4)
    proof = tree.prove_many(keys)
    leaves = {k: tree.get(k) for k in keys}
    siblings = list(proof.siblings)
    siblings[len(siblings) // 2] = keccak256(b"forged")
    forged = dataclasses.replace(proof, siblings=tuple(siblings))
    root, _ = compute_evm_root(merkle, leaves, forged)
    assert root == compute_root_from_multiproof(leaves, forged) != tree.root


def test_tampered_leaf_changes_the_root(merkle: Any, tree: SparseMerkleTree) -> None:
    keys = pick_keys(tree, 10, seed=5)
    proof = tree.prove_many(keys)
    leaves = {k: tree.get(k) for k in keys} | {keys[3]: keccak256(b"forged")}
    assert compute_evm_root(merkle, leaves, proof)[0] != tree.root


Tamper = Callable[[list[int], list[bytes], list[bytes], list[bytes]], tuple[list[int], list[bytes], list[bytes], list[bytes]]]


def _set_bit(word: bytes, bit: int) -> bytes:
    return (int.from_bytes(word, "big") | 1 << bit).to_bytes(32, "big")


MALFORMED: dict[str, tuple[Tamper, str]] = {
    "unsorted keys": (lambda k, l, s, b: (k[::-1], l[::-1], s, b), "multiproof: keys must be strictly increasing"),
    "duplicate key": (lambda k, l, s, b: (k[:1] + k[:-1], l[:1] + l[:-1], s, b), "multiproof: keys must be strictly increasing"),
    "key outside the tree": (lambda k, l, s, b: (k[:-1] + [2**DEPTH + k[-1]], l, s, b), "multiproof: key outside the depth-32 tree"),
    "leaf missing": (lambda k, l, s, b: (k, l[:-1], s, b), "multiproof: keys and leaves differ in number"),
    "sibling missing": (lambda k, l, s, b: (k, l, s[:-1], b), "multiproof: too few siblings"),
    "sibling extra": (lambda k, l, s, b: (k, l, s + [keccak256(b"x")], b), "multiproof: too many siblings"),
    "bitmap empty": (lambda k, l, s, b: (k, l, s, []), "multiproof: bitmap too short"),
    "bitmap trailing word": (lambda k, l, s, b: (k, l, s, b + [bytes(32)]), "multiproof: bitmap has more words than its slots need"),
    "bit past the last slot": (lambda k, l, s, b: (k, l, s, b[:-1] + [_set_bit(b[-1], 255)]), "multiproof: bitmap has bits set past the last slot"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_invalid_multiproof_reverts(merkle: Any, tree: SparseMerkleTree, case: str) -> None:
    """A malformed proof reverts on chain, with the reason, and is refused by the Python checker."""
    keys = pick_keys(tree, 10, seed=6)  # 10 keys: fewer than 255 slots, so bit 255 is past the last
    proof = tree.prove_many(keys)
    tamper, reason = MALFORMED[case]
    k, l, s, b = tamper(*([list(x) for x in (keys, [tree.get(k) for k in keys], proof.siblings, proof.bitmap)]))
    assert get_revert_reason(merkle.functions.compute_multiproof_root(k, l, s, b)) == reason
    if len(k) == len(l):  # the Python API takes a mapping: it cannot express a missing leaf
        with pytest.raises(InvalidProof):
            compute_root_from_multiproof(dict(zip(k, l)), MultiProof(DEPTH, tuple(k), tuple(b), tuple(s)))


def test_invalid_proof_too_large_for_the_contract(tree: SparseMerkleTree) -> None:
    keys = sorted(tree)[: MAX_KEYS + 1]
    with pytest.raises(ProofTooLarge, match="at most 256"):
        to_evm_multiproof(tree.prove_many(keys))


def test_multiproof_gas(merkle: Any, tree: SparseMerkleTree) -> None:
    """Gas per multiproof (the internal call; calldata and memory expansion not included)."""
    report = {}
    for count in (10, 100, 256):
        keys = pick_keys(tree, count, seed=100 + count)
        proof = tree.prove_many(keys)
        root, gas = compute_evm_root(merkle, {k: tree.get(k) for k in keys}, proof)
        assert root == tree.root
        report[count] = {"siblings": len(proof.siblings), "gas": gas, "gas_per_key": gas // count}
        # about 32 levels of a keccak and bookkeeping per key, less where paths merge
        assert gas < 32 * 600 * count
    print("multiproof gas", report)


# --- merkle.vy: the withdrawal list tree -------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 33])
def test_list_root_and_proofs_match_python(merkle: Any, count: int) -> None:
    leaves = [keccak256(b"withdrawal" + bytes([i])) for i in range(count)]
    root = merkle_list.compute_list_root(leaves)
    assert merkle.functions.compute_list_root(leaves).call(CALL)[0] == root
    depth = merkle_list.compute_list_depth(count)
    assert merkle.functions.compute_list_depth(count).call(CALL) == depth
    for index, leaf in enumerate(leaves):
        proof = merkle_list.compute_list_proof(leaves, index)
        assert len(proof) == depth
        assert merkle_list.compute_list_root_from_proof(leaf, index, proof) == root
        assert merkle.functions.compute_list_root_from_proof(leaf, index, proof).call(CALL)[0] == root


def test_list_root_definition() -> None:
    """The padding rule spelled out: three leaves become four, the fourth 32 zero bytes."""
    a, b, c = (keccak256(bytes([i])) for i in range(3))
    assert merkle_list.compute_list_root([]) == EMPTY_LEAF
    assert merkle_list.compute_list_root([a]) == a
    assert merkle_list.compute_list_root([a, b, c]) == keccak256(keccak256(a + b) + keccak256(c + EMPTY_LEAF))


def test_list_proof_tampered(merkle: Any) -> None:
    leaves = [keccak256(bytes([i])) for i in range(6)]
    root = merkle_list.compute_list_root(leaves)
    proof = merkle_list.compute_list_proof(leaves, 4)
    # another position, another leaf, or a changed sibling: not the root
    assert merkle.functions.compute_list_root_from_proof(leaves[4], 5, proof).call(CALL)[0] != root
    assert merkle.functions.compute_list_root_from_proof(leaves[3], 4, proof).call(CALL)[0] != root
    forged = proof[:1] + [keccak256(b"x")] + proof[2:]
    assert merkle.functions.compute_list_root_from_proof(leaves[4], 4, forged).call(CALL)[0] != root


def test_invalid_list_index_outside_the_tree(merkle: Any) -> None:
    proof = [keccak256(b"a"), keccak256(b"b")]
    reason = get_revert_reason(merkle.functions.compute_list_root_from_proof(keccak256(b"leaf"), 4, proof))
    assert reason == "withdrawal proof: index outside the tree"
    with pytest.raises(InvalidProof):
        merkle_list.compute_list_root_from_proof(keccak256(b"leaf"), 4, proof)


def test_invalid_list_too_long(merkle: Any) -> None:
    assert get_revert_reason(merkle.functions.compute_list_depth(merkle_list.MAX_LIST + 1)) == "withdrawal list: too many leaves"


# --- eip712.vy ------------------------------------------------------------------------------------


def test_type_strings_match_the_wire_models(eip712: Any) -> None:
    """The source's readable type strings are what verifier.encoding derives from the models."""
    strings = eip712.functions.get_type_strings().call(CALL)
    models = [TRANSACTION_TYPES[name] for name in SLOT_TYPES]
    assert [m.__name__ for m in models[-1:]] == ["OracleUpdate"]
    assert strings == [compute_encode_type(m.__name__, get_eip712_types(m)) for m in models]
    domain_type = "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in DOMAIN_TYPE) + ")"
    assert eip712.functions.get_domain_strings().call(CALL) == [DOMAIN_NAME, DOMAIN_VERSION, domain_type]


def test_domain_separator(eip712: Any, workload: Any) -> None:
    genesis = workload.genesis
    for domain in (genesis.signing_domain, SigningDomain(1, genesis.rollup_address), SigningDomain(2**64 - 1, "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF")):
        separator = eip712.functions.compute_domain_separator(domain.l1_chain_id, domain.verifying_contract).call(CALL)
        assert separator == compute_domain_separator(domain)


def test_secp256k1_order_matches_eth_keys(eip712: Any) -> None:
    assert eip712.functions.get_secp256k1_n().call(CALL) == SECPK1_N


def compute_evm_digest(eip712: Any, tx: Any, domain: SigningDomain) -> tuple[bytes, int]:
    if isinstance(tx, OracleUpdate):
        return eip712.functions.compute_oracle_digest(*encode_oracle_update(tx), compute_domain_separator(domain)).call(CALL)
    kind, words = encode_tx_words(tx)
    return eip712.functions.compute_tx_digest(kind, words, compute_domain_separator(domain)).call(CALL)


@pytest.mark.parametrize("kind", SLOT_TYPES)
def test_digest_and_signers_match_python(eip712: Any, workload: Any, kind: str) -> None:
    """Every transaction of the type: the contract's digest is Python's, and every signature
    recovers on chain to the signer Python recovers."""
    domain = workload.genesis.signing_domain
    txs = [tx for tx in workload.transactions if tx.type == kind]
    assert txs, f"the workload has no {kind}"
    for tx in txs:
        digest = compute_signing_digest(tx, domain)
        assert compute_evm_digest(eip712, tx, domain)[0] == digest
        for field, signer in zip(get_signature_fields(type(tx)), recover_signers(tx, domain), strict=True):
            assert eip712.functions.recover(digest, *split_signature(getattr(tx, field))).call(CALL)[0] == signer
    # and Python's fast digest is eth-account's (the reference), for one of them
    assert compute_signing_digest_reference(txs[0], domain) == compute_signing_digest(txs[0], domain)


def test_negative_sizes_are_covered(workload: Any) -> None:
    """The signed words (perp and liquidation sizes) include negative values, as v mod r."""
    sizes = [tx.size for tx in workload.transactions if tx.type in ("perp_trade", "liquidate")]
    assert min(sizes) < 0 < max(sizes)


def _first(workload: Any, kind: str) -> Any:
    return next(tx for tx in workload.transactions if tx.type == kind)


def test_changed_word_changes_the_signer(eip712: Any, workload: Any) -> None:
    """A sequencer that alters a signed word (the fee) gets another digest: the signature no
    longer recovers to the trader."""
    domain = workload.genesis.signing_domain
    tx = _first(workload, "perp_trade")
    kind, words = encode_tx_words(tx)
    words[5] += 1
    digest, _ = eip712.functions.compute_tx_digest(kind, words, compute_domain_separator(domain)).call(CALL)
    assert digest != compute_signing_digest(tx, domain)
    signer, _ = eip712.functions.recover(digest, *split_signature(tx.taker_signature)).call(CALL)
    assert signer != recover_signers(tx, domain)[1]


INVALID_WORDS: dict[str, tuple[str, Callable[[list[int]], None], str]] = {
    "word not below r": ("transfer", lambda w: w.__setitem__(3, BN254.r), "eip712: amount out of range"),
    "negative amount (r - x)": ("transfer", lambda w: w.__setitem__(3, BN254.r - 1_000_000), "eip712: amount out of range"),
    "withdrawal of 0": ("withdraw", lambda w: w.__setitem__(3, 0), "eip712: amount out of range"),
    "amount of 2**64": ("deposit", lambda w: w.__setitem__(3, 2**64), "eip712: amount out of range"),
    "fee of 2**64": ("perp_trade", lambda w: w.__setitem__(5, 2**64), "eip712: fee out of range"),
    "negative fee (r - x)": ("option_trade", lambda w: w.__setitem__(5, BN254.r - 1), "eip712: fee out of range"),
    "perp price 0": ("perp_trade", lambda w: w.__setitem__(4, 0), "eip712: price out of range"),
    "perp price 2**56": ("perp_trade", lambda w: w.__setitem__(4, 2**56), "eip712: price out of range"),
    "premium 2**56": ("option_trade", lambda w: w.__setitem__(4, 2**56), "eip712: premium out of range"),
    "option quantity 2**31": ("option_trade", lambda w: w.__setitem__(3, 2**31), "eip712: quantity out of range"),
    "perp size 2**31": ("perp_trade", lambda w: w.__setitem__(3, 2**31), "eip712: size out of range"),
    "perp size -2**31": ("perp_trade", lambda w: w.__setitem__(3, BN254.r - 2**31), "eip712: size out of range"),
    "liquidation size 2**40": ("liquidate", lambda w: w.__setitem__(3, 2**40), "eip712: size out of range"),
    "nonce 2**32": ("withdraw", lambda w: w.__setitem__(6, 2**32), "eip712: nonce out of range"),
    "account id 2**29": ("transfer", lambda w: w.__setitem__(1, 2**29), "eip712: account id out of range"),
    "instrument id 2**16": ("perp_trade", lambda w: w.__setitem__(2, 2**16), "eip712: instrument id out of range"),
    "unused word set": ("withdraw", lambda w: w.__setitem__(1, 7), "eip712: a word this transaction type does not carry is not zero"),
    "timestamp on a trade": ("perp_trade", lambda w: w.__setitem__(10, 1), "eip712: a word this transaction type does not carry is not zero"),
    "settlement nonces differ": ("settle_expired", lambda w: w.__setitem__(7, w[6] + 1), "eip712: a settlement's two nonce words differ"),
    "wide deposit address": ("deposit", lambda w: w.__setitem__(9, w[9] + 2**160), "eip712: address word is wider than 160 bits"),
}


@pytest.mark.parametrize("case", sorted(INVALID_WORDS))
def test_invalid_words_revert(eip712: Any, workload: Any, case: str) -> None:
    kind_name, tamper, reason = INVALID_WORDS[case]
    kind, words = encode_tx_words(_first(workload, kind_name))
    tamper(words)
    assert get_revert_reason(eip712.functions.compute_tx_digest(kind, words, compute_domain_separator(workload.genesis.signing_domain))) == reason


def test_invalid_kind_oracle_update(eip712: Any, workload: Any) -> None:
    reason = get_revert_reason(eip712.functions.compute_tx_digest(SLOT_TYPES.index("oracle_update"), [0] * 11, bytes(32)))
    assert reason == "eip712: not a user transaction"
    with pytest.raises(UnencodableTransaction):
        encode_tx_words(_first(workload, "oracle_update"))


def _get_non_x_coordinate() -> int:
    """The smallest r that is no secp256k1 point's x (x**3 + 7 is not a square mod p)."""
    return next(x for x in range(1, 100) if pow(x**3 + 7, (SECPK1_P - 1) // 2, SECPK1_P) != 1)


def test_invalid_signatures_revert(eip712: Any, workload: Any) -> None:
    tx = _first(workload, "transfer")
    digest = compute_signing_digest(tx, workload.genesis.signing_domain)
    v, r, s = split_signature(tx.signature)
    recover = eip712.functions.recover
    high_v, high_r, high_s = split_signature(compute_malleable_twin(tx.signature))
    assert high_s > SECPK1_N // 2
    assert get_revert_reason(recover(digest, high_v, high_r, high_s)) == "signature: s out of range (EIP-2 requires s <= n/2)"
    assert get_revert_reason(recover(digest, v, r, 0)) == "signature: s out of range (EIP-2 requires s <= n/2)"
    assert get_revert_reason(recover(digest, 29, r, s)) == "signature: v must be 27 or 28"
    assert get_revert_reason(recover(digest, v - 27, r, s)) == "signature: v must be 27 or 28"
    assert get_revert_reason(recover(digest, v, 0, s)) == "signature: r out of range"
    assert get_revert_reason(recover(digest, v, SECPK1_N, s)) == "signature: r out of range"
    assert get_revert_reason(recover(digest, v, _get_non_x_coordinate(), s)) == "signature: no public key recovers from it"


def test_split_signature_refuses_a_short_one() -> None:
    with pytest.raises(UnencodableTransaction, match="65 bytes"):
        split_signature("0x" + "11" * 64)


def test_oracle_update_lists_are_bounded(workload: Any) -> None:
    tx = _first(workload, "oracle_update")
    marks = [{"instrument": i, "price": 1} for i in range(MAX_INSTRUMENTS + 1)]
    too_long = OracleUpdate.model_validate({**tx.model_dump(), "marks": marks})
    with pytest.raises(UnencodableTransaction, match="at most 16"):
        encode_oracle_update(too_long)


def test_digest_gas(eip712: Any, workload: Any) -> None:
    """Gas per digest type and per recovery (internal call only)."""
    domain = workload.genesis.signing_domain
    report = {}
    for kind in SLOT_TYPES:
        tx = _first(workload, kind)
        _, gas = compute_evm_digest(eip712, tx, domain)
        report[kind] = gas
        assert gas < (60_000 if kind == "oracle_update" else 6_000)
    tx = _first(workload, "transfer")
    _, report["recover"] = eip712.functions.recover(compute_signing_digest(tx, domain), *split_signature(tx.signature)).call(CALL)
    assert report["recover"] < 5_000
    oracle = _first(workload, "oracle_update")
    report["oracle_update_lists"] = [len(oracle.marks), len(oracle.funding), len(oracle.risk_arrays), len(oracle.settlements)]
    print("digest gas", report)
