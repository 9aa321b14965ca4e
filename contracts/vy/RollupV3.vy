# pragma version 0.4.3
# pragma optimize gas
"""
@title Settlement contract of the ZK derivatives rollup, circuit v3
@notice Holds the funds, the state root (a BN254 field element: Poseidon(accounts, markets,
        globals), verifier/state_tree.py), the batch number, the L1 deposit queue, the withdrawal
        claims and the escape hatch. `settle(proofs, data)` settles batch `batch_number + 1`,
        several segments in one transaction, only if:
        - every segment's public inputs, rebuilt here from `data` (never taken from the caller),
          verify with its proof: all proofs in one batched pairing check (TransitionVerifierV3)
          with Fiat-Shamir weights drawn from keccak256 of the batch number, the stored root,
          `data` and the proofs (every public input is a function of the first three);
        - the roots chain: segment 0 starts from the stored root, segment i from segment i-1's
          root after; the last root after becomes the stored root;
        - trades, transfers, liquidations and settlements are signed with the accounts' L2 keys,
          verified inside the proofs (no signature here); a withdrawal's and a key registration's
          Ethereum signature is recovered with `ecrecover` over the EIP-712 digest of the
          transaction rebuilt from its record (low s required, EIP-2) and must be the account
          owner's (a withdrawal) or the address the record names (a registration, which the
          circuit proves is the account's);
        - an oracle section, when a segment carries one, is signed by the oracle fixed at
          deployment (EIP-712 digest rebuilt from the section's words);
        - the deposits consume the L1 queue in order and match it (account, address, amount);
        - every withdrawal becomes a claim of its account's owner (who opened it on L1).

        Signatures are EIP-712 in the domain {name, version, chainId: this chain, verifyingContract:
        this contract} (verifier/encoding.py), so the contract must sit where the genesis names
        (`rollup_address`): it is deployed first, at the deployer's predicted CREATE address, and
        the deployer then binds the verifier and the Poseidon contracts once (`initialize`).

        Public inputs per segment (verifier/transition.py, compute_transition_inputs): batch,
        segment index, root before, root after, the oracle section's ORACLE_WORDS words (zeros,
        supplied here, when the segment has no update), then the records hash: the low 253 bits
        of sha256 over every slot's two record words, 32 bytes each (zeros for an empty slot),
        which the circuit proves over the same words (verifier/pubdata.py, compute_records_hash).
        One public input per segment, whatever its slot count: the MSM does not grow with it.

        `data`, per segment: root after (32 bytes), oracle flag (1), transaction count (1); if the
        flag is 1, the oracle section's words (32 bytes each) and the oracle's signature; then per
        transaction its record (verifier/pubdata.py's bytes, 15-60) followed, for a withdrawal or
        a key registration only, by its signature. After the last segment, 32 zero bytes, so that
        every read is one 32-byte load. A signature is EIP-2098's 64 bytes: r, then s with v - 27
        as its top bit (the published 65-byte r, s, v re-encoded by transition_client).
"""

import v3params
import v3records

interface TransitionVerifier:
    def verify_combined(
        proofs: DynArray[uint256[8], v3params.MAX_SEGMENTS],
        rhos: DynArray[uint256, v3params.MAX_SEGMENTS],
        combined: uint256[v3params.N_PUBLIC],
        sum_rho: uint256,
    ) -> bool: view

interface Poseidon3:
    def poseidon(inputs: uint256[3]) -> uint256: pure

interface Poseidon4:
    def poseidon(inputs: uint256[4]) -> uint256: pure

interface Poseidon6:
    def poseidon(inputs: uint256[6]) -> uint256: pure

R: constant(uint256) = v3params.BN254_R
UNIT_WEI: constant(uint256) = 10**6  # one collateral unit (1e-6 USD) is 1e6 wei of the L1 coin
ACCOUNT_ID_LIMIT: constant(uint256) = v3params.TREE_ARITY ** v3params.TREE_DEPTH  # ids the tree addresses
PATH_WORDS: constant(uint256) = v3params.TREE_DEPTH * (v3params.TREE_ARITY - 1)
RECORDS_AT: constant(uint256) = 4 + v3params.ORACLE_WORDS  # the records hash's public input
RECORDS_HASH_MASK: constant(uint256) = 2**253 - 1  # its low 253 bits: a field element
WEIGHT_SHIFT: constant(uint256) = 128  # rho_i: the top 128 bits of a keccak word

# secp256k1's group order n (checked against eth_keys.constants.SECPK1_N by the tests)
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
SECP256K1_HALF_N: constant(uint256) = SECP256K1_N // 2  # EIP-2: s <= n/2, no malleable twin
S_MASK: constant(uint256) = (1 << 255) - 1  # an EIP-2098 signature's s (its top bit is v - 27)


struct ForcedWithdrawal:
    account: uint256
    amount: uint256
    nonce: uint256  # of the L2 Withdraw the owner signed with the request
    deadline_batch: uint256  # must be served by this batch number
    deadline_time: uint256  # or by this time, if batches stop


event Deposited:
    deposit_id: indexed(uint256)
    account: indexed(uint256)
    sender: address
    amount: uint256
    queue_hash: bytes32


event BatchSettled:
    number: indexed(uint256)
    new_root: uint256
    segments: uint256
    transactions: uint256
    deposits_consumed: uint256


event WithdrawalClaimed:
    account: indexed(uint256)
    recipient: indexed(address)
    amount: uint256


event ForcedWithdrawalRequested:
    request_id: indexed(uint256)
    account: indexed(uint256)
    amount: uint256
    nonce: uint256
    signature: uint256[3]  # v, r, s of the L2 Withdraw: the sequencer submits it as is
    deadline_batch: uint256


event ForcedWithdrawalDismissed:
    request_id: indexed(uint256)
    reason: String[64]


event Frozen:
    request_id: uint256


event Exited:
    account: indexed(uint256)
    recipient: address
    amount: uint256


ORACLE: public(immutable(address))
DOMAIN_SEPARATOR: public(immutable(bytes32))  # this chain, this contract
DEPLOYER: immutable(address)
EMPTY_POSITIONS_HASH: public(immutable(uint256))  # an account without positions (dismissals)
FORCED_DELAY_BATCHES: public(immutable(uint256))
FORCED_DELAY_SECONDS: public(immutable(uint256))

# bound once by the deployer (they are deployed after this contract, whose address the genesis names)
verifier: public(address)
poseidon3: public(address)
poseidon4: public(address)
poseidon6: public(address)

state_root: public(uint256)
batch_number: public(uint256)

deposit_count: public(uint256)  # L1 queue length
deposit_hashes: public(HashMap[uint256, bytes32])  # rolling hash after n deposits
deposit_times: public(HashMap[uint256, uint256])  # when deposit n was queued
deposit_reclaimed: public(HashMap[uint256, bool])
deposits_consumed: public(uint256)
account_owner: public(HashMap[uint256, address])  # who opened the account (its L1 owner)
next_account_id: public(uint256)  # the id `open_account` assigns next

withdrawable: public(HashMap[uint256, uint256])  # account -> settled, unclaimed collateral units

forced: public(HashMap[uint256, ForcedWithdrawal])
forced_count: public(uint256)
forced_served: public(uint256)
frozen: public(bool)
exited: public(HashMap[uint256, bool])


@deploy
def __init__(
    genesis_root: uint256,
    oracle: address,
    empty_positions_hash: uint256,
    forced_delay_batches: uint256,
    forced_delay_seconds: uint256,
):
    # a root is a field element
    assert genesis_root < R and empty_positions_hash < R, "genesis root and positions hash must be below r"
    # a sequencer needs at least one batch (its proving pipeline) to include a request
    assert forced_delay_batches >= 1 and forced_delay_seconds >= 1, "forced-withdrawal delays must be positive"
    self.state_root = genesis_root
    ORACLE = oracle
    DOMAIN_SEPARATOR = self._compute_domain_separator(chain.id, self)
    DEPLOYER = msg.sender
    EMPTY_POSITIONS_HASH = empty_positions_hash
    FORCED_DELAY_BATCHES = forced_delay_batches
    FORCED_DELAY_SECONDS = forced_delay_seconds


@external
def initialize(verifier: address, poseidon3: address, poseidon4: address, poseidon6: address):
    """Bind the transition verifier and the Poseidon contracts, once, by the deployer."""
    assert msg.sender == DEPLOYER, "only the deployer initialises the rollup"
    assert self.verifier == empty(address), "the rollup is already initialised"
    # contracts, not accounts: a call to an address without code would return nothing
    assert verifier.is_contract and poseidon3.is_contract and poseidon4.is_contract and poseidon6.is_contract, "verifier and Poseidon must be contracts"
    self.verifier = verifier
    self.poseidon3 = poseidon3
    self.poseidon4 = poseidon4
    self.poseidon6 = poseidon6


# --- EIP-712 and signatures (the domain is defined here only) -----------------------------------


@internal
@pure
def _compute_domain_separator(chain_id: uint256, verifying_contract: address) -> bytes32:
    """The rollup's EIP-712 domain {name, version, chainId, verifyingContract}
    (verifier/encoding.py, compute_domain_separator): a signature binds this L1 and this contract."""
    return keccak256(abi_encode(v3records.DOMAIN_TYPEHASH, v3records.DOMAIN_NAME_HASH, v3records.DOMAIN_VERSION_HASH, chain_id, verifying_contract))


@internal
@view
def _compute_digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(x"1901", DOMAIN_SEPARATOR, struct_hash))


@internal
@pure
def _recover(digest: bytes32, v: uint256, r: uint256, s: uint256) -> address:
    """The signer, checked as verifier.encoding.parse_signature does; reverts rather than return a
    wrong signer."""
    # Ethereum's v is 27 or 28
    assert v == 27 or v == 28, "signature: v must be 27 or 28"
    # r is a nonzero scalar
    assert r != 0 and r < SECP256K1_N, "signature: r out of range"
    # s is a nonzero scalar in the lower half (EIP-2: no malleable twin)
    assert s != 0 and s <= SECP256K1_HALF_N, "signature: s out of range (EIP-2 requires s <= n/2)"
    signer: address = ecrecover(digest, v, r, s)
    # the precompile returns nothing when no public key recovers
    assert signer != empty(address), "signature: no public key recovers from it"
    return signer


@internal
@pure
def _recover_compact(digest: bytes32, r: uint256, vs: uint256) -> address:
    """The signer of an EIP-2098 compact signature (r, then s with v - 27 as its top bit), with the
    checks of `_recover`: reverts rather than return a wrong signer."""
    s: uint256 = vs & S_MASK
    # EIP-2: s <= n/2, no malleable twin (the precompile accepts both halves)
    assert s <= SECP256K1_HALF_N, "signature: s out of range (EIP-2 requires s <= n/2)"
    signer: address = ecrecover(digest, unsafe_add(vs >> 255, 27), r, s)
    if signer == empty(address):
        raise self._explain_bad_signature(r, s)
    return signer


@internal
@pure
def _explain_bad_signature(r: uint256, s: uint256) -> String[64]:
    """Why `ecrecover` returned nothing (only on that path: the precompile itself refuses an r or
    s out of [1, n), so the accepted path needs no check of its own but the low s)."""
    if r == 0 or r >= SECP256K1_N:
        return "signature: r out of range"
    if s == 0:
        return "signature: s out of range (EIP-2 requires s <= n/2)"
    return "signature: no public key recovers from it"


# --- the L1 deposit queue (the entry's hash is defined here only) --------------------------------


@internal
@pure
def _hash_queue_entry(previous: bytes32, account: uint256, sender: uint256, amount: uint256) -> bytes32:
    """keccak256(previous, account, sender, amount) as 32-byte words: Rollup.vy's queue entry and
    verifier.transition.compute_queue_hash."""
    return keccak256(abi_encode(previous, account, sender, amount))


@external
@payable
def open_account(amount: uint256) -> uint256:
    """Open an L2 account owned by msg.sender with a first deposit of `amount` units; returns its
    id. The contract assigns ids in order: nobody chooses one, so nobody can squat an id another
    user meant to take (front-running its first deposit did, when depositors chose ids)."""
    account: uint256 = self.next_account_id
    # an account id of the state tree
    assert account < ACCOUNT_ID_LIMIT, "no account id left"
    self.next_account_id = account + 1
    self.account_owner[account] = msg.sender
    self._queue(account, amount, msg.value)
    return account


@external
@payable
def deposit(account: uint256, amount: uint256):
    """Queue a deposit of `amount` collateral units (msg.value = amount * UNIT_WEI) to an open
    account of msg.sender's. The queue entry authorises the L2 deposit (no L2 signature), and the
    L2 binds accounts as this contract does, so it never meets a queued deposit it must reject
    (which would block the queue)."""
    # only the owner tops an account up (the L2 would refuse another address: the queue would block)
    assert self.account_owner[account] == msg.sender, "not an account of the sender's: open one with open_account"
    self._queue(account, amount, msg.value)


@internal
def _queue(account: uint256, amount: uint256, paid: uint256):
    """Append a deposit from msg.sender to the L1 queue (its rolling hash and its time)."""
    assert not self.frozen, "the rollup is frozen"
    # positive, within the wire bound
    assert amount > 0 and amount < 1 << 64, "amount must be in (0, 2**64)"
    assert paid == amount * UNIT_WEI, "msg.value must be amount * UNIT_WEI"
    n: uint256 = self.deposit_count
    queue_hash: bytes32 = self._hash_queue_entry(self.deposit_hashes[n], account, convert(msg.sender, uint256), amount)
    self.deposit_hashes[n + 1] = queue_hash
    self.deposit_times[n] = block.timestamp
    self.deposit_count = n + 1
    log Deposited(deposit_id=n, account=account, sender=msg.sender, amount=amount, queue_hash=queue_hash)


# --- settlement ----------------------------------------------------------------------------------


@internal
@pure
def _get_weight(seed: bytes32, i: uint256) -> uint256:
    """rho_i: 1 for the first proof, else 128 bits of keccak256(seed, i), never 0."""
    if i == 0:
        return 1
    rho: uint256 = convert(keccak256(concat(seed, convert(i, bytes32))), uint256) >> WEIGHT_SHIFT
    if rho == 0:
        return 1  # a zero weight would leave proof i unchecked
    return rho


@internal
@view
def _compute_oracle_digest(words: uint256[v3params.ORACLE_WORDS]) -> bytes32:
    """The EIP-712 digest of the OracleUpdate an oracle section stands for
    (verifier/oracle_section.py, get_update_fields): lists in table order, unlisted values left out."""
    marks: DynArray[bytes32, v3params.N_INSTRUMENTS] = []
    funding: DynArray[bytes32, v3params.N_INSTRUMENTS] = []
    risks: DynArray[bytes32, v3params.N_INSTRUMENTS] = []
    settlements: DynArray[bytes32, v3params.N_INSTRUMENTS] = []
    for e: uint256 in range(v3params.N_INSTRUMENTS):
        at: uint256 = 1 + e * (1 + v3params.RISK_WORDS)
        word: uint256 = words[at]
        instrument: uint256 = v3params.TABLE[e]
        flags: uint256 = (word >> v3params.FLAGS_SHIFT) & v3params.FLAGS_MASK
        if flags & v3params.FLAG_MARK != 0:
            marks.append(keccak256(abi_encode(v3records.INSTRUMENT_PRICE_TYPEHASH, instrument, (word >> v3params.MARK_SHIFT) & v3params.MARK_MASK)))
        if flags & v3params.FLAG_FUNDING != 0:
            index: uint256 = unsafe_sub((word >> v3params.FUNDING_SHIFT) & v3params.FUNDING_MASK, v3params.FUNDING_OFFSET)
            funding.append(keccak256(abi_encode(v3records.INSTRUMENT_FUNDING_TYPEHASH, instrument, index)))
        if flags & v3params.FLAG_RISK != 0:
            values: uint256[v3params.N_SCENARIOS] = empty(uint256[v3params.N_SCENARIOS])
            for k: uint256 in range(v3params.N_SCENARIOS):
                risk_word: uint256 = words[at + 1 + k // v3params.RISK_PER_WORD]
                bits: uint256 = v3params.RISK_SHIFT_0 - (k % v3params.RISK_PER_WORD) * v3params.RISK_SHIFT_STEP
                values[k] = unsafe_sub((risk_word >> bits) & v3params.RISK_MASK, v3params.RISK_OFFSET)
            risks.append(keccak256(abi_encode(v3records.RISK_ARRAY_TYPEHASH, instrument, keccak256(abi_encode(values)))))
        if flags & v3params.FLAG_SETTLEMENT != 0:
            settlements.append(keccak256(abi_encode(v3records.INSTRUMENT_PRICE_TYPEHASH, instrument, (word >> v3params.SETTLEMENT_SHIFT) & v3params.SETTLEMENT_MASK)))
    timestamp: uint256 = (words[0] >> v3params.TIMESTAMP_SHIFT) & v3params.TIMESTAMP_MASK
    # the update it follows: the circuit proves it is the last one applied (none skipped)
    previous: uint256 = (words[0] >> v3params.PREVIOUS_TIMESTAMP_SHIFT) & v3params.PREVIOUS_TIMESTAMP_MASK
    struct_hash: bytes32 = keccak256(abi_encode(
        v3records.ORACLE_UPDATE_TYPEHASH, timestamp, previous, self._hash_array(marks), self._hash_array(funding),
        self._hash_array(risks), self._hash_array(settlements),
    ))
    return self._compute_digest(struct_hash)


@internal
@pure
def _hash_array(hashes: DynArray[bytes32, v3params.N_INSTRUMENTS]) -> bytes32:
    """EIP-712 encoding of an array: keccak256 of its members' 32-byte encodings, concatenated."""
    if len(hashes) == 0:
        return keccak256(b"")
    return keccak256(slice(abi_encode(hashes, ensure_tuple=False), 32, 32 * len(hashes)))


@internal
def _serve_forced(account: uint256, amount: uint256, nonce: uint256):
    """A settled withdrawal serves the oldest pending forced request if it is that withdrawal."""
    n: uint256 = self.forced_served
    if n < self.forced_count:
        request: ForcedWithdrawal = self.forced[n]
        if request.account == account and request.amount == amount and request.nonce == nonce:
            self.forced_served = n + 1


@external
def settle(proofs: DynArray[uint256[8], v3params.MAX_SEGMENTS], data: Bytes[v3params.MAX_DATA]):
    """Settle the next batch: one proof per segment, `data` as the top of this file describes."""
    assert not self.frozen, "the rollup is frozen"
    verifier: address = self.verifier
    assert verifier != empty(address), "the rollup is not initialised"
    n_segments: uint256 = len(proofs)
    # a batch proves something
    assert n_segments > 0, "a settlement needs at least one segment"
    batch: uint256 = self.batch_number + 1
    root: uint256 = self.state_root
    # Fiat-Shamir: every public input is a function of (batch, stored root, data), so the weights
    # are fixed only after every input and every proof is
    seed: bytes32 = keccak256(abi_encode(batch, root, keccak256(data), keccak256(abi_encode(proofs))))
    combined: uint256[v3params.N_PUBLIC] = empty(uint256[v3params.N_PUBLIC])
    rhos: DynArray[uint256, v3params.MAX_SEGMENTS] = []
    sum_rho: uint256 = 0
    queue_at: uint256 = self.deposits_consumed
    queue_hash: bytes32 = self.deposit_hashes[queue_at]
    n_deposits: uint256 = 0
    n_transactions: uint256 = 0
    at: uint256 = 0
    # EIP-712's 0x1901 || domain separator, built once: a digest is keccak256 of it and a struct hash
    digest_prefix: Bytes[34] = concat(x"1901", DOMAIN_SEPARATOR)
    for i: uint256 in range(n_segments, bound=v3params.MAX_SEGMENTS):
        rho: uint256 = self._get_weight(seed, i)
        rhos.append(rho)
        sum_rho = uint256_addmod(sum_rho, rho, R)
        root_after: uint256 = extract32(data, at, output_type=uint256)
        head: uint256 = extract32(data, at + 32, output_type=uint256)
        has_oracle: uint256 = head >> 248
        n_tx: uint256 = (head >> 240) & 255
        at += v3params.SEGMENT_HEADER_BYTES
        # a root is a field element: x and x + r would verify the same proof
        assert root_after < R, concat("segment ", uint2str(i), ": root after is not below r")
        assert has_oracle < 2, concat("segment ", uint2str(i), ": oracle flag must be 0 or 1")
        assert n_tx <= v3params.N_SLOTS, concat("segment ", uint2str(i), ": more transactions than slots")
        combined[0] = uint256_addmod(combined[0], uint256_mulmod(rho, batch, R), R)
        combined[1] = uint256_addmod(combined[1], uint256_mulmod(rho, i, R), R)
        combined[2] = uint256_addmod(combined[2], uint256_mulmod(rho, root, R), R)
        combined[3] = uint256_addmod(combined[3], uint256_mulmod(rho, root_after, R), R)
        root = root_after
        if has_oracle == 1:
            words: uint256[v3params.ORACLE_WORDS] = empty(uint256[v3params.ORACLE_WORDS])
            for m: uint256 in range(v3params.ORACLE_WORDS):
                x: uint256 = extract32(data, at + 32 * m, output_type=uint256)
                # a section word is 31 bytes, as verifier/oracle_section.py packs it
                assert x < v3params.WORD_LIMIT, concat("segment ", uint2str(i), ": an oracle word is not below 2^248")
                words[m] = x
                combined[4 + m] = uint256_addmod(combined[4 + m], uint256_mulmod(rho, x, R), R)
            at += 32 * v3params.ORACLE_WORDS
            # a section in the data is an update
            assert (words[0] >> v3params.HAS_UPDATE_SHIFT) & v3params.HAS_UPDATE_MASK == 1, concat("segment ", uint2str(i), ": oracle section without an update")
            signer: address = self._recover_compact(
                self._compute_oracle_digest(words), extract32(data, at, output_type=uint256), extract32(data, at + 32, output_type=uint256)
            )
            at += v3params.SIGNATURE_BYTES
            # prices come from the oracle key fixed at deployment
            assert signer == ORACLE, concat("segment ", uint2str(i), ": oracle update not signed by the oracle")
        # the segment's record words, as the circuit hashes them (empty slots stay 0)
        records: uint256[2 * v3params.N_SLOTS] = empty(uint256[2 * v3params.N_SLOTS])
        # the hot loop: every offset below stays under MAX_DATA (extract32 checks each read against
        # len(data)), so its arithmetic is unchecked
        for k: uint256 in range(n_tx, bound=v3params.N_SLOTS):
            w0: uint256 = extract32(data, at, output_type=uint256)
            w1: uint256 = extract32(data, unsafe_add(at, 32), output_type=uint256)
            code: uint256 = w0 >> 248
            layout: uint256 = v3records.RECORD_LAYOUT >> unsafe_mul(code, v3records.LAYOUT_BITS)
            size: uint256 = layout & 255
            # a known record type (0 is the empty slot, never sent)
            assert size != 0, concat("segment ", uint2str(i), ", slot ", uint2str(k), ": unknown record type")
            # the record's two public words, each its bytes left-aligned in 31 bytes: below 2^248 < r
            # by construction (a word holds at most 31 record bytes: transition_build checks it)
            split: uint256 = (layout >> 8) & 255
            bits: uint256 = unsafe_sub(256, unsafe_mul(8, split))  # the bits of w0 after the first word's bytes
            rec0: uint256 = ((w0 >> bits) << bits) >> 8
            # the record's bytes from `split` on: the rest of w0, then the start of w1
            rest: uint256 = (w0 << unsafe_sub(256, bits)) | (w1 >> bits)
            bits = unsafe_sub(256, unsafe_mul(8, unsafe_sub(size, split)))  # 256 (an empty word) shifts to 0
            rec1: uint256 = ((rest >> bits) << bits) >> 8
            at = unsafe_add(at, size)
            if code == v3records.CODE_DEPOSIT:
                # no signature: its L1 queue entry authorises it (checked against the queue after the loop)
                account: uint256 = 0
                amount: uint256 = 0
                owner: uint256 = 0
                account, amount, owner = v3records.get_deposit(w0, w1)
                queue_hash = self._hash_queue_entry(queue_hash, account, owner, amount)
                n_deposits = unsafe_add(n_deposits, 1)
            elif code == v3records.CODE_WITHDRAW or code == v3records.CODE_REGISTER_KEY:
                # the Ethereum-signed types (every other record's signatures are L2 signatures,
                # verified inside the proof): the signature inline (EIP-2098: r, then s with v - 27
                # as its top bit), the low s checked here and the rest by the precompile
                digest: bytes32 = keccak256(concat(digest_prefix, v3records.get_struct_hash(code, w0, w1)))
                r: uint256 = extract32(data, at, output_type=uint256)
                vs: uint256 = extract32(data, unsafe_add(at, 32), output_type=uint256)
                at = unsafe_add(at, v3params.SIGNATURE_BYTES)
                sig_s: uint256 = vs & S_MASK
                assert sig_s <= SECP256K1_HALF_N, "signature: s out of range (EIP-2 requires s <= n/2)"
                signer: address = ecrecover(digest, unsafe_add(vs >> 255, 27), r, sig_s)
                if signer == empty(address):
                    raise self._explain_bad_signature(r, sig_s)
                if code == v3records.CODE_WITHDRAW:
                    account: uint256 = 0
                    amount: uint256 = 0
                    nonce: uint256 = 0
                    account, amount, nonce = v3records.get_withdrawal(w0, w1)
                    # the account's owner (its L2 address: deposits bind it) signs its withdrawals
                    assert signer == self.account_owner[account], concat("segment ", uint2str(i), ", slot ", uint2str(k), ": withdrawal not signed by the account's owner")
                    self.withdrawable[account] += amount
                    self._serve_forced(account, amount, nonce)
                else:
                    # the account's address signs its L2 key (the circuit proves the record's
                    # address is the account's)
                    assert convert(signer, uint256) == v3records.get_registered_address(w0, w1), concat("segment ", uint2str(i), ", slot ", uint2str(k), ": key registration not signed by the account's address")
            records[unsafe_add(k, k)] = rec0
            records[unsafe_add(unsafe_add(k, k), 1)] = rec1
        records_hash: uint256 = convert(sha256(abi_encode(records)), uint256) & RECORDS_HASH_MASK
        combined[RECORDS_AT] = uint256_addmod(combined[RECORDS_AT], uint256_mulmod(rho, records_hash, R), R)
        n_transactions += n_tx
    # the data ends with the 32 zero bytes that keep every read in bounds, and nothing else
    assert at + 32 == len(data) and extract32(data, at, output_type=uint256) == 0, "settlement data: its length does not match its segments"
    end: uint256 = queue_at + n_deposits
    # the batch's deposits are the L1 queue's next ones, in order, as deposited
    assert end <= self.deposit_count and queue_hash == self.deposit_hashes[end], "deposits do not match the L1 queue"
    assert staticcall TransitionVerifier(verifier).verify_combined(proofs, rhos, combined, sum_rho), "the proofs do not verify for the public inputs rebuilt from the data"
    self.state_root = root
    self.batch_number = batch
    self.deposits_consumed = end
    log BatchSettled(number=batch, new_root=root, segments=n_segments, transactions=n_transactions, deposits_consumed=end)


# --- withdrawals ---------------------------------------------------------------------------------


@external
def claim_withdrawal(account: uint256):
    """Pay an account's settled withdrawals to its owner (who opened it on L1), once."""
    amount: uint256 = self.withdrawable[account]
    # something settled and not yet claimed
    assert amount > 0, "nothing to claim for this account"
    recipient: address = self.account_owner[account]
    self.withdrawable[account] = 0
    log WithdrawalClaimed(account=account, recipient=recipient, amount=amount)
    raw_call(recipient, b"", value=amount * UNIT_WEI)


# --- escape hatch --------------------------------------------------------------------------------


@internal
@view
def _compute_root(account: uint256, leaf: uint256, path: DynArray[uint256, PATH_WORDS], markets_hash: uint256, globals_hash: uint256) -> uint256:
    """The state root a leaf value and its path give: per level from the leaves up, the
    arity - 1 siblings in child order, the node left out (verifier/state_tree.py)."""
    # an id the tree addresses, and a path of the tree's shape
    assert account < ACCOUNT_ID_LIMIT, "account id out of range"
    assert len(path) == PATH_WORDS, "a path has depth * (arity - 1) siblings"
    # the EVM Poseidon reduces its inputs mod r silently: x and x + r must not both pass
    assert markets_hash < R and globals_hash < R, "markets and globals hashes must be below r"
    node: uint256 = leaf
    for level: uint256 in range(v3params.TREE_DEPTH):
        index: uint256 = (account >> (level * v3params.TREE_DIGIT_BITS)) & (v3params.TREE_ARITY - 1)
        children: uint256[4] = empty(uint256[4])
        taken: uint256 = 0
        for c: uint256 in range(v3params.TREE_ARITY):
            if c == index:
                children[c] = node
            else:
                sibling: uint256 = path[level * (v3params.TREE_ARITY - 1) + taken]
                assert sibling < R, "a path node is not below r"
                children[c] = sibling
                taken += 1
        node = staticcall Poseidon4(self.poseidon4).poseidon(children)
    return staticcall Poseidon3(self.poseidon3).poseidon([node, markets_hash, globals_hash])


@internal
@view
def _hash_leaf(owner: uint256, collateral: uint256, nonce: uint256, l2_key: uint256, positions_hash: uint256, orders_hash: uint256) -> uint256:
    # every input below r (the contract would reduce it silently)
    assert owner < 1 << 160 and collateral < R and nonce < R and l2_key < R and positions_hash < R and orders_hash < R, "leaf fields must be below r"
    return staticcall Poseidon6(self.poseidon6).poseidon([owner, collateral, nonce, l2_key, positions_hash, orders_hash])


@external
def request_forced_withdrawal(account: uint256, amount: uint256, nonce: uint256, signature: uint256[3]):
    """Ask, from L1, for an L2 withdrawal the sequencer cannot censor. The request carries the L2
    `Withdraw` (account, amount, nonce) signed by the account's key (v, r, s), checked here, so
    the sequencer always has the transaction to include. Within FORCED_DELAY_BATCHES batches or
    FORCED_DELAY_SECONDS the sequencer must settle a batch holding that withdrawal, or dismiss
    the request with its account's leaf at the settled root showing the L2 would reject it;
    otherwise anyone may freeze the rollup."""
    assert not self.frozen, "the rollup is frozen"
    assert self.account_owner[account] == msg.sender, "only the account's owner may force a withdrawal"
    assert amount > 0 and amount < 1 << 64, "amount must be in (0, 2**64)"
    assert nonce < 1 << 32, "nonce out of range"
    digest: bytes32 = self._compute_digest(v3records.get_withdraw_struct_hash(account, amount, nonce))
    # the L2 transaction the sequencer will include is the owner's
    assert self._recover(digest, signature[0], signature[1], signature[2]) == msg.sender, "the L2 withdrawal is not signed by the account's owner"
    n: uint256 = self.forced_count
    deadline: uint256 = self.batch_number + FORCED_DELAY_BATCHES
    self.forced[n] = ForcedWithdrawal(
        account=account, amount=amount, nonce=nonce, deadline_batch=deadline, deadline_time=block.timestamp + FORCED_DELAY_SECONDS
    )
    self.forced_count = n + 1
    log ForcedWithdrawalRequested(request_id=n, account=account, amount=amount, nonce=nonce, signature=signature, deadline_batch=deadline)


@external
def dismiss_forced_withdrawal(
    exists: bool,
    owner: uint256,
    collateral: uint256,
    nonce: uint256,
    l2_key: uint256,
    positions_hash: uint256,
    orders_hash: uint256,
    path: DynArray[uint256, PATH_WORDS],
    markets_hash: uint256,
    globals_hash: uint256,
):
    """Dismiss the oldest pending forced withdrawal with its account's leaf at the settled root
    (the empty leaf 0 when `exists` is False), which shows the L2 would reject it: no account,
    open positions, another nonce, or less collateral than the amount."""
    n: uint256 = self.forced_served
    assert n < self.forced_count, "no forced withdrawal is pending"
    request: ForcedWithdrawal = self.forced[n]
    leaf: uint256 = 0
    reason: String[64] = "the account does not exist"
    if exists:
        leaf = self._hash_leaf(owner, collateral, nonce, l2_key, positions_hash, orders_hash)
        if positions_hash != EMPTY_POSITIONS_HASH:
            reason = "the account has open positions"
        elif nonce != request.nonce:
            reason = "the withdrawal's nonce is not the account's"
        elif collateral < request.amount:
            reason = "the account's collateral is below the amount"
        else:
            reason = ""
    assert self._compute_root(request.account, leaf, path, markets_hash, globals_hash) == self.state_root, "account leaf is not in the last settled root"
    # the withdrawal is valid: only settling it serves the request
    assert reason != "", "the forced withdrawal is valid: settle it"
    self.forced_served = n + 1
    log ForcedWithdrawalDismissed(request_id=n, reason=reason)


@external
def freeze():
    """Freeze the rollup if the oldest pending forced withdrawal is overdue, or if the oldest
    queued deposit has waited longer than FORCED_DELAY_SECONDS (deposits cannot be censored)."""
    n: uint256 = self.forced_served
    overdue_withdrawal: bool = False
    if n < self.forced_count:
        request: ForcedWithdrawal = self.forced[n]
        overdue_withdrawal = self.batch_number >= request.deadline_batch or block.timestamp >= request.deadline_time
    d: uint256 = self.deposits_consumed
    overdue_deposit: bool = d < self.deposit_count and block.timestamp >= self.deposit_times[d] + FORCED_DELAY_SECONDS
    assert n < self.forced_count or d < self.deposit_count, "no forced withdrawal or deposit is pending"
    assert overdue_withdrawal or overdue_deposit, "nothing pending is overdue"
    self.frozen = True
    log Frozen(request_id=n)


@external
def reclaim_deposit(deposit_id: uint256, account: uint256, sender: address, amount: uint256):
    """After a freeze: refund a queued deposit the L2 never consumed, once, to its sender."""
    assert self.frozen, "deposits are reclaimed only once the rollup is frozen"
    assert deposit_id >= self.deposits_consumed and deposit_id < self.deposit_count, "no such deposit left in the queue"
    assert not self.deposit_reclaimed[deposit_id], "deposit already reclaimed"
    # the queue entry, as deposited
    entry: bytes32 = self._hash_queue_entry(self.deposit_hashes[deposit_id], account, convert(sender, uint256), amount)
    assert entry == self.deposit_hashes[deposit_id + 1], "not the queued deposit"
    self.deposit_reclaimed[deposit_id] = True
    raw_call(sender, b"", value=amount * UNIT_WEI)


@external
def exit(
    account: uint256,
    owner: uint256,
    collateral: uint256,
    nonce: uint256,
    l2_key: uint256,
    positions_hash: uint256,
    orders_hash: uint256,
    path: DynArray[uint256, PATH_WORDS],
    markets_hash: uint256,
    globals_hash: uint256,
):
    """After a freeze: pay an account's collateral against the stored root, once, to the address
    its leaf registers. The leaf is Poseidon(address, collateral, nonce, l2_key, positions_hash, orders_hash); open
    positions are not valued (no trusted price after a freeze), only collateral is paid."""
    assert self.frozen, "exits open only once the rollup is frozen"
    assert not self.exited[account], "account already exited"
    leaf: uint256 = self._hash_leaf(owner, collateral, nonce, l2_key, positions_hash, orders_hash)
    assert self._compute_root(account, leaf, path, markets_hash, globals_hash) == self.state_root, "account leaf is not in the stored root"
    self.exited[account] = True
    recipient: address = convert(owner, address)
    log Exited(account=account, recipient=recipient, amount=collateral)
    raw_call(recipient, b"", value=collateral * UNIT_WEI)
