# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title Batch verifier of the ZK derivatives rollup
@notice Checks a batch's calldata and then settles it on the `Rollup` contract, which holds the
        funds, the root, the deposit queue and the withdrawal claims (two contracts: one would
        exceed EIP-170's 24,576-byte code limit). A batch is settled only if
        - every segment's Groth16 proof verifies (one batched pairing check, `Groth16Verifier`),
          with public inputs taken from the calldata windows, the batch number and segment index
          from this contract;
        - every window is bound to the state: account leaves are re-encoded from the windows'
          before/after words and chained per key through the batch, the first "before" of every
          key and the start instrument/globals leaves prove against the stored root with one
          multiproof, and the last "after" of every key rebuilds the new root with the same proof;
        - every position's oracle view (mark, funding index, risk array) equals the instrument
          leaf as the slot sees it, oracle updates are signed by the genesis oracle key and follow
          the oracle rules (replayed here);
        - every user signature recovers (ecrecover over its EIP-712 digest) to the account's
          registered address (the window's `address_before`): signatures are not proven in the
          circuit;
        - the batch's deposits consume the L1 queue in order (rolling hash).
        The circuit proves the rules over the windows (see verifier/segment.py for the layout).
"""

import params
import eip712
import merkle

struct Withdrawal:
    account: uint256
    recipient: address
    amount: uint256


interface Rollup:
    def state_root() -> bytes32: view
    def batch_number() -> uint256: view
    def deposits_consumed() -> uint256: view
    def deposit_hashes(n: uint256) -> bytes32: view
    def settle(
        new_root: bytes32,
        transactions: uint256,
        keys: DynArray[uint256, MAX_KEYS],
        before: DynArray[bytes32, MAX_KEYS],
        after: DynArray[bytes32, MAX_KEYS],
        siblings: DynArray[bytes32, MAX_SIBLINGS],
        bitmap: DynArray[bytes32, MAX_BITMAP],
        deposits_end: uint256,
        queue_hash: bytes32,
        withdrawals: DynArray[Withdrawal, MAX_SLOTS],
    ): nonpayable

interface Digests:
    def compute_tx_digest(kind: uint256, words: uint256[eip712.N_WORDS], domain_separator: bytes32) -> bytes32: pure
    def check_words(kind: uint256, words: uint256[eip712.N_WORDS]) -> bool: pure
    def compute_oracle_digest(
        timestamp: uint256,
        previous_timestamp: uint256,
        marks: DynArray[eip712.InstrumentPrice, eip712.MAX_INSTRUMENTS],
        funding: DynArray[eip712.InstrumentFunding, eip712.MAX_INSTRUMENTS],
        risk_arrays: DynArray[eip712.RiskArray, eip712.MAX_INSTRUMENTS],
        settlements: DynArray[eip712.InstrumentPrice, eip712.MAX_INSTRUMENTS],
        domain_separator: bytes32,
    ) -> bytes32: pure

interface Groth16Verifier:
    def compute_vk_x(inputs: DynArray[uint256, params.N_PUBLIC], ic0_scalar: uint256) -> uint256[2]: view
    def verify_weighted(proofs: DynArray[uint256[8], 16], rhos: DynArray[uint256, 16], vk_sum: uint256[2]) -> bool: view

# --- window layout (verifier/segment.py: flatten order of SlotPublic) --------------------------------
N_TYPES: constant(uint256) = 8
TX: constant(uint256) = 8  # after the 8 type flags: the transaction's 11 words
WIN_A: constant(uint256) = 19
POS: constant(uint256) = 7  # words of an account window before its position slots
PW: constant(uint256) = 10 + params.N_SCENARIOS  # words of a position slot
AW: constant(uint256) = POS + params.MAX_POSITIONS * PW
WIN_B: constant(uint256) = WIN_A + AW
WIN_I: constant(uint256) = WIN_B + AW
WIN_G: constant(uint256) = WIN_I + 8
SEGMENT_WORDS: constant(uint256) = params.N_SLOTS * params.SLOT_WORDS
SLOT_BYTES: constant(uint256) = 32 * params.SLOT_WORDS
SEGMENT_BYTES: constant(uint256) = 32 * SEGMENT_WORDS
ZERO_BLOCK: constant(uint256) = 32  # words skipped at once when all zero (one keccak256)

# slot types (verifier.segment.SLOT_TYPES order)
DEPOSIT: constant(uint256) = 0
WITHDRAW: constant(uint256) = 1
TRANSFER: constant(uint256) = 2
PERP_TRADE: constant(uint256) = 3
OPTION_TRADE: constant(uint256) = 4
SETTLE_EXPIRED: constant(uint256) = 5
LIQUIDATE: constant(uint256) = 6
ORACLE_UPDATE: constant(uint256) = 7
NOOP: constant(uint256) = 8

# state-tree keys (verifier/encoding.py)
KIND_SHIFT: constant(uint256) = 29
INSTRUMENT_KIND: constant(uint256) = 1 << KIND_SHIFT
GLOBALS_KEY: constant(uint256) = 2 << KIND_SHIFT
LEAF_ACCOUNT: constant(uint256) = 1
LEAF_INSTRUMENT: constant(uint256) = 2
LEAF_GLOBALS: constant(uint256) = 3

# bounds of one batch
MAX_SEGMENTS: constant(uint256) = params.MAX_SEGMENTS  # contracts/build.py: why so few
MAX_SLOTS: constant(uint256) = MAX_SEGMENTS * params.N_SLOTS
MAX_SIGNATURES: constant(uint256) = 2 * MAX_SLOTS
MAX_ORACLE: constant(uint256) = MAX_SLOTS  # an oracle update takes a slot
MAX_INSTRUMENTS: constant(uint256) = eip712.MAX_INSTRUMENTS
MAX_KEYS: constant(uint256) = merkle.MAX_KEYS
MAX_SIBLINGS: constant(uint256) = merkle.MAX_SIBLINGS
MAX_BITMAP: constant(uint256) = merkle.MAX_BITMAP
ACCOUNT_LEAF_WORDS: constant(uint256) = 5 + 4 * params.MAX_POSITIONS
INSTRUMENT_LEAF_WORDS: constant(uint256) = 10 + params.N_SCENARIOS


struct Instrument:  # an instrument leaf, decoded (verifier/encoding.py INSTRUMENT_WORDS)
    id: uint256
    kind: uint256  # 0 perpetual, 1 option
    has_mark: uint256
    mark: uint256
    funding_index: int256
    open_interest: uint256
    has_settlement: uint256
    settlement: uint256
    n_risk: uint256  # 0 until the oracle publishes a risk array, then N_SCENARIOS
    risk: int256[params.N_SCENARIOS]


struct Globals:
    fee_pool: uint256
    insurance_fund: int256
    deposit_count: uint256
    oracle_time: uint256
    genesis_hash: bytes32


struct OracleUpdate:  # the signed update's lists (sorted by instrument); the timestamp is a tx word
    previous_timestamp: uint256  # the oracle's previous update: it must be the last one applied
    marks: DynArray[eip712.InstrumentPrice, MAX_INSTRUMENTS]
    funding: DynArray[eip712.InstrumentFunding, MAX_INSTRUMENTS]
    risk_arrays: DynArray[eip712.RiskArray, MAX_INSTRUMENTS]
    settlements: DynArray[eip712.InstrumentPrice, MAX_INSTRUMENTS]
    signature: uint256[3]  # v, r, s


struct SlotResult:
    kind: uint256
    digest: bytes32  # the EIP-712 digest its signers signed
    signer_a: address  # window A's registered address before the slot
    signer_b: address
    n_signers: uint256  # 0 (deposit, oracle update, padding), 1 or 2
    first: address  # who signs first, then `signer_b` for two-sided trades


struct MultiProof:
    keys: DynArray[uint256, MAX_KEYS]  # sorted: every key the batch touches, every instrument, globals
    siblings: DynArray[bytes32, MAX_SIBLINGS]
    bitmap: DynArray[bytes32, MAX_BITMAP]


# --- configuration (the genesis the circuit and the state commit to) -------------------------------
rollup: public(Rollup)
verifier: public(Groth16Verifier)
digests: public(Digests)
# the EIP-712 domain of every signature: this L1's chain id and the Rollup contract's address
DOMAIN_SEPARATOR: public(immutable(bytes32))
oracle: public(address)
genesis_hash: public(bytes32)
instrument_ids: public(DynArray[uint256, MAX_INSTRUMENTS])
instrument_kind: public(HashMap[uint256, uint256])
instrument_expiry: public(HashMap[uint256, uint256])

# per-batch scratch (EIP-1153 transient storage: gone after the transaction)
t_epoch: transient(uint256)
t_key_slot: transient(HashMap[uint256, uint256])  # key -> index + 1 in the multiproof's keys
t_seen: transient(HashMap[uint256, uint256])  # index -> epoch of its first touch
t_before: transient(HashMap[uint256, bytes32])
t_after: transient(HashMap[uint256, bytes32])
t_instrument: transient(HashMap[uint256, Instrument])
t_globals: transient(Globals)
t_queue_hash: transient(bytes32)
t_withdrawals: transient(DynArray[Withdrawal, MAX_SLOTS])


@deploy
def __init__(
    rollup: address,
    verifier: address,
    digests: address,
    oracle: address,
    genesis_hash: bytes32,
    instrument_ids: DynArray[uint256, MAX_INSTRUMENTS],
    instrument_kinds: DynArray[uint256, MAX_INSTRUMENTS],
    instrument_expiries: DynArray[uint256, MAX_INSTRUMENTS],
):
    # the window layout this source assumes is the one params.vy was generated for
    assert WIN_G + 6 == params.SLOT_WORDS, "window layout does not match the segment shape"
    # one kind and one expiry per instrument, listed by increasing id
    assert len(instrument_kinds) == len(instrument_ids) and len(instrument_expiries) == len(instrument_ids), "instrument lists differ in length"
    previous: uint256 = 0
    for i: uint256 in range(len(instrument_ids), bound=MAX_INSTRUMENTS):
        assert i == 0 or instrument_ids[i] > previous, "instruments must be sorted by id"
        assert instrument_kinds[i] <= 1, "instrument kind is 0 (perpetual) or 1 (option)"
        previous = instrument_ids[i]
        self.instrument_kind[previous] = instrument_kinds[i]
        self.instrument_expiry[previous] = instrument_expiries[i]
    self.rollup = Rollup(rollup)
    self.verifier = Groth16Verifier(verifier)
    self.digests = Digests(digests)
    DOMAIN_SEPARATOR = eip712.compute_domain_separator(chain.id, rollup)
    self.oracle = oracle
    self.genesis_hash = genesis_hash
    self.instrument_ids = instrument_ids


# --- settlement ----------------------------------------------------------------------------------

@internal
@pure
def _to_int(x: uint256) -> int256:
    """A signed value from its field element v mod r."""
    assert x < params.BN254_R, "public word >= r"
    if x > params.BN254_R // 2:
        return -convert(params.BN254_R - x, int256)
    return convert(x, int256)


@internal
@pure
def _to_word(x: uint256) -> uint256:
    """A signed value's leaf word (two's complement) from its field element."""
    return self._twos(self._to_int(x))


@internal
@pure
def _twos(v: int256) -> uint256:
    """A signed leaf word: two's complement (verifier/encoding.py), not a range-checked convert."""
    return convert(convert(v, bytes32), uint256)


@internal
@pure
def _from_int(v: int256) -> uint256:
    """The field element of a signed value."""
    if v < 0:
        return params.BN254_R - convert(-v, uint256)
    return convert(v, uint256)


@internal
@pure
def _hash_words(words: DynArray[uint256, ACCOUNT_LEAF_WORDS]) -> bytes32:
    return keccak256(slice(abi_encode(words), 64, 32 * len(words)))


@internal
@view
def _hash_instrument(inst: Instrument) -> bytes32:
    words: DynArray[uint256, INSTRUMENT_LEAF_WORDS] = [
        LEAF_INSTRUMENT, inst.id, inst.kind, inst.has_mark, inst.mark, self._twos(inst.funding_index),
        inst.open_interest, inst.has_settlement, inst.settlement, inst.n_risk,
    ]
    for k: uint256 in range(inst.n_risk, bound=params.N_SCENARIOS):
        words.append(self._twos(inst.risk[k]))
    return keccak256(slice(abi_encode(words), 64, 32 * len(words)))


@internal
@view
def _hash_globals(g: Globals) -> bytes32:
    return keccak256(abi_encode(LEAF_GLOBALS, g.fee_pool, g.insurance_fund, g.deposit_count, g.oracle_time, g.genesis_hash))


@internal
def _touch(key: uint256, before: bytes32, after: bytes32):
    """Chain one leaf step: the first before of a key is proven against the old root, later ones
    must equal the previous after."""
    index: uint256 = self.t_key_slot[key]
    # the multiproof covers every key the batch touches
    assert index != 0, "a touched key is missing from the multiproof"
    index -= 1
    if self.t_seen[index] != self.t_epoch:
        self.t_seen[index] = self.t_epoch
        self.t_before[index] = before
    else:
        # the leaf as the previous step left it
        assert self.t_after[index] == before, "a leaf step does not start where the previous one ended"
    self.t_after[index] = after


@internal
def _check_zero(w: DynArray[uint256, params.SLOT_WORDS], start: uint256, count: uint256, what: String[40]):
    for k: uint256 in range(count, bound=params.SLOT_WORDS):
        assert w[start + k] == 0, what


@internal
def _check_position_view(w: DynArray[uint256, params.SLOT_WORDS], p: uint256, instrument_id: uint256):
    """The oracle view a position slot carries is the instrument leaf as the slot sees it."""
    # only listed instruments are held
    assert self.t_key_slot[INSTRUMENT_KIND | instrument_id] != 0, "position in an unlisted instrument"
    inst: Instrument = self.t_instrument[instrument_id]
    assert w[p + 8] == inst.mark, "position mark is not the instrument's"
    assert w[p + 9] == self._from_int(inst.funding_index), "position funding index is not the instrument's"
    for k: uint256 in range(params.N_SCENARIOS):
        assert w[p + 10 + k] == self._from_int(inst.risk[k]), "position risk array is not the instrument's"


@internal
def _process_account(w: DynArray[uint256, params.SLOT_WORDS], o: uint256, account: uint256, traded: uint256) -> address:
    """Bind an account window to its leaves: re-encode the leaf before and after the slot from the
    window, check the canonical position layout and the oracle views, and chain the key.
    Returns the registered address (the signer) before the slot."""
    assert account < 1 << KIND_SHIFT, "account id out of range"
    exists: uint256 = w[o]
    assert exists <= 1, "exists_before is a bit"
    # addresses are 160-bit words
    assert w[o + 1] < 1 << 160 and w[o + 2] < 1 << 160, "address word out of range"
    before: DynArray[uint256, ACCOUNT_LEAF_WORDS] = [LEAF_ACCOUNT, w[o + 1], w[o + 3], w[o + 4], 0]
    after: DynArray[uint256, ACCOUNT_LEAF_WORDS] = [LEAF_ACCOUNT, w[o + 2], w[o + 5], w[o + 6], 0]
    padding: bool = False
    has_previous: bool = False
    previous: uint256 = 0
    for i: uint256 in range(params.MAX_POSITIONS):
        p: uint256 = o + POS + i * PW
        used: bool = w[p + 2] != 0 or w[p + 5] != 0 or w[p + 1] != 0
        if not used:
            # unused position slots are zero and come last
            self._check_zero(w, p, PW, "unused position slot is not zero")
            padding = True
            continue
        assert not padding, "position slots are not packed"
        instrument_id: uint256 = w[p]
        # held instruments in increasing id order, each once (the canonical leaf)
        assert instrument_id < 1 << 16, "instrument id out of range"
        assert not has_previous or instrument_id > previous, "positions must be sorted by instrument"
        has_previous = True
        previous = instrument_id
        # the matched slot is the traded instrument's (the circuit also proves this)
        assert w[p + 1] == 0 or instrument_id == traded, "matched position is not the traded instrument"
        # a size of 0 is no position: cost and funding are 0 too
        if w[p + 2] == 0:
            assert w[p + 3] == 0 and w[p + 4] == 0, "position before has size 0 but cost or funding"
        else:
            before.append(instrument_id)
            before.append(self._to_word(w[p + 2]))
            before.append(self._to_word(w[p + 3]))
            before.append(self._to_word(w[p + 4]))
            before[4] += 1
        if w[p + 5] == 0:
            assert w[p + 6] == 0 and w[p + 7] == 0, "position after has size 0 but cost or funding"
        else:
            after.append(instrument_id)
            after.append(self._to_word(w[p + 5]))
            after.append(self._to_word(w[p + 6]))
            after.append(self._to_word(w[p + 7]))
            after[4] += 1
        self._check_position_view(w, p, instrument_id)
    before_hash: bytes32 = empty(bytes32)
    if exists == 1:
        before_hash = self._hash_words(before)
    else:
        # an absent account has nothing before
        assert w[o + 1] == 0 and w[o + 3] == 0 and w[o + 4] == 0 and before[4] == 0, "absent account with a non-zero window"
    self._touch(account, before_hash, self._hash_words(after))
    return convert(w[o + 1], address)


@internal
def _process_instrument(w: DynArray[uint256, params.SLOT_WORDS], o: uint256, instrument_id: uint256):
    """The traded instrument's window is its leaf as the slot sees it; open interest moves by the
    proven delta."""
    index: uint256 = self.t_key_slot[INSTRUMENT_KIND | instrument_id]
    assert index != 0 and instrument_id < 1 << 16, "trade in an unlisted instrument"
    inst: Instrument = self.t_instrument[instrument_id]
    assert w[o] == convert(inst.kind == 0, uint256), "instrument window: is_perp"
    assert w[o + 1] == inst.has_mark and w[o + 2] == inst.mark, "instrument window: mark"
    assert w[o + 3] == convert(inst.n_risk != 0, uint256), "instrument window: has_risk"
    assert w[o + 4] == self.instrument_expiry[instrument_id], "instrument window: expiry"
    assert w[o + 5] == inst.has_settlement and w[o + 6] == inst.settlement, "instrument window: settlement"
    before: bytes32 = self._hash_instrument(inst)
    interest: int256 = convert(inst.open_interest, int256) + self._to_int(w[o + 7])
    assert interest >= 0, "open interest below zero"
    inst.open_interest = convert(interest, uint256)
    self.t_instrument[instrument_id] = inst
    self._touch(INSTRUMENT_KIND | instrument_id, before, self._hash_instrument(inst))


@internal
def _process_globals(w: DynArray[uint256, params.SLOT_WORDS], o: uint256):
    g: Globals = self.t_globals
    before: bytes32 = self._hash_globals(g)
    # the window starts where the previous slot left the globals leaf
    assert w[o] == g.deposit_count and w[o + 2] == g.oracle_time, "globals window does not chain"
    g.deposit_count = w[o + 1]
    g.oracle_time = w[o + 3]
    g.fee_pool = convert(convert(g.fee_pool, int256) + self._to_int(w[o + 4]), uint256)
    g.insurance_fund += self._to_int(w[o + 5])
    self.t_globals = g
    self._touch(GLOBALS_KEY, before, self._hash_globals(g))


@internal
@pure
def _check_signature(digest: bytes32, sig: uint256[3], signer: address):
    # the account's registered key signed this transaction
    assert eip712.recover(digest, sig[0], sig[1], sig[2]) == signer, "signature does not recover to the account's address"


@internal
def _find_oracle_instrument(instrument_id: uint256) -> Instrument:
    # only listed instruments are priced
    assert instrument_id < 1 << 16 and self.t_key_slot[INSTRUMENT_KIND | instrument_id] != 0, "oracle update for an unlisted instrument"
    return self.t_instrument[instrument_id]


@internal
def _process_oracle(update: OracleUpdate, timestamp: uint256, oracle_time: uint256):
    """Replay a signed oracle update on the instrument leaves (the rules of verifier/batch.py
    `compute_oracle_writes`): the circuit proves only the oracle clock. `oracle_time` is the
    globals leaf's before the slot."""
    # the update follows the last one applied: the sequencer cannot skip a signed update
    assert update.previous_timestamp == oracle_time, "oracle update out of sequence"
    digest: bytes32 = staticcall self.digests.compute_oracle_digest(timestamp, update.previous_timestamp, update.marks, update.funding, update.risk_arrays, update.settlements, DOMAIN_SEPARATOR)
    # prices come from the genesis oracle key
    assert eip712.recover(digest, update.signature[0], update.signature[1], update.signature[2]) == self.oracle, "oracle update not signed by the oracle"
    touched: DynArray[uint256, 4 * MAX_INSTRUMENTS] = []
    before: DynArray[bytes32, 4 * MAX_INSTRUMENTS] = []
    for item: eip712.InstrumentPrice in update.marks:
        inst: Instrument = self._find_oracle_instrument(item.instrument)
        touched.append(item.instrument)
        before.append(self._hash_instrument(inst))
        inst.has_mark = 1
        inst.mark = item.price
        self.t_instrument[item.instrument] = inst
    for item: eip712.InstrumentFunding in update.funding:
        inst: Instrument = self._find_oracle_instrument(item.market)
        # funding only for perpetual markets
        assert inst.kind == 0, "funding for an instrument that is not a perpetual"
        touched.append(item.market)
        before.append(self._hash_instrument(inst))
        inst.funding_index = item.index
        self.t_instrument[item.market] = inst
    for item: eip712.RiskArray in update.risk_arrays:
        inst: Instrument = self._find_oracle_instrument(item.instrument)
        # one risk value per scenario of the grid
        assert len(item.values) == params.N_SCENARIOS, "risk array length is not the scenario count"
        touched.append(item.instrument)
        before.append(self._hash_instrument(inst))
        inst.n_risk = params.N_SCENARIOS
        for k: uint256 in range(params.N_SCENARIOS):
            inst.risk[k] = item.values[k]
        self.t_instrument[item.instrument] = inst
    for item: eip712.InstrumentPrice in update.settlements:
        inst: Instrument = self._find_oracle_instrument(item.instrument)
        # settlement only for expired option series, once
        assert inst.kind == 1 and self.instrument_expiry[item.instrument] <= timestamp and inst.has_settlement == 0, "settlement not allowed"
        touched.append(item.instrument)
        before.append(self._hash_instrument(inst))
        inst.has_settlement = 1
        inst.settlement = item.price
        self.t_instrument[item.instrument] = inst
    # chain each written leaf once per update: its state before the update, then after it
    for i: uint256 in range(len(touched), bound=4 * MAX_INSTRUMENTS):
        first: bool = True
        for j: uint256 in range(i, bound=4 * MAX_INSTRUMENTS):
            if touched[j] == touched[i]:
                first = False
                break
        if first:
            self._touch(INSTRUMENT_KIND | touched[i], before[i], self._hash_instrument(self.t_instrument[touched[i]]))


@internal
def _process_slot(w: DynArray[uint256, params.SLOT_WORDS]) -> SlotResult:
    """Bind one slot's windows to the state (an oracle update's lists are the caller's)."""
    result: SlotResult = empty(SlotResult)
    result.kind = NOOP
    for k: uint256 in range(N_TYPES):
        if w[k] != 0:
            # one type per slot (the circuit proves the flags are bits, at most one set)
            assert result.kind == NOOP and w[k] == 1, "type flags are not one bit"
            result.kind = k
    kind: uint256 = result.kind
    if kind == NOOP:
        self._check_zero(w, 0, params.SLOT_WORDS, "a padding slot is not zero")
        return result
    if kind == ORACLE_UPDATE:
        # the clock is proven in the circuit; the windows and the other words are empty
        self._check_zero(w, TX, 10, "an oracle update's words are not zero")
        self._check_zero(w, WIN_A, 2 * AW + 8, "an oracle update's windows are not zero")
        self._process_globals(w, WIN_G)
        return result
    words: uint256[11] = empty(uint256[11])
    for k: uint256 in range(11):
        words[k] = w[TX + k]
    traded: bool = kind == PERP_TRADE or kind == OPTION_TRADE or kind == SETTLE_EXPIRED or kind == LIQUIDATE
    instrument: uint256 = max_value(uint256)  # matches no position slot
    if traded:
        instrument = words[2]
    result.signer_a = self._process_account(w, WIN_A, words[0], instrument)
    uses_b: bool = kind == TRANSFER or kind == PERP_TRADE or kind == OPTION_TRADE or kind == LIQUIDATE or (kind == SETTLE_EXPIRED and words[1] != words[0])
    if uses_b:
        b_traded: uint256 = instrument
        if kind == SETTLE_EXPIRED:
            b_traded = max_value(uint256)  # a keeper's positions do not change
        result.signer_b = self._process_account(w, WIN_B, words[1], b_traded)
    else:
        self._check_zero(w, WIN_B, AW, "an unused account window is not zero")
    if traded:
        self._process_instrument(w, WIN_I, instrument)
    else:
        self._check_zero(w, WIN_I, 8, "an unused instrument window is not zero")
    self._process_globals(w, WIN_G)
    if kind == DEPOSIT:
        # the L1 queue, in order: the queue entry is the deposit's authorisation
        assert staticcall self.digests.check_words(kind, words)
        self.t_queue_hash = keccak256(abi_encode(self.t_queue_hash, words[0], convert(words[9], address), words[3]))
        return result
    result.digest = staticcall self.digests.compute_tx_digest(kind, words, DOMAIN_SEPARATOR)
    result.n_signers = 1
    result.first = result.signer_a
    if kind == PERP_TRADE or kind == OPTION_TRADE:
        result.n_signers = 2  # both sides sign the same message: window A's (taker, buyer) first
    elif kind == SETTLE_EXPIRED and uses_b:
        result.first = result.signer_b  # the keeper
    if kind == WITHDRAW:
        self.t_withdrawals.append(Withdrawal(account=words[0], recipient=result.signer_a, amount=words[3]))
    return result


@internal
def _load_start(instruments: DynArray[Instrument, MAX_INSTRUMENTS], globals_before: Globals, proof: MultiProof):
    self.t_epoch += 1
    for i: uint256 in range(len(proof.keys), bound=MAX_KEYS):
        # keys are sorted and unique (the multiproof checks it too)
        assert i == 0 or proof.keys[i] > proof.keys[i - 1], "multiproof keys are not sorted"
        self.t_key_slot[proof.keys[i]] = i + 1
    # the instrument leaves as the batch starts: every listed instrument, in id order
    assert len(instruments) == len(self.instrument_ids), "every listed instrument is published"
    for i: uint256 in range(len(instruments), bound=MAX_INSTRUMENTS):
        inst: Instrument = instruments[i]
        assert inst.id == self.instrument_ids[i], "instruments are not the listed ones"
        assert inst.kind == self.instrument_kind[inst.id], "instrument kind is not the genesis one"
        assert inst.has_mark <= 1 and inst.has_settlement <= 1 and (inst.n_risk == 0 or inst.n_risk == params.N_SCENARIOS), "malformed instrument leaf"
        if inst.n_risk == 0:
            for k: uint256 in range(params.N_SCENARIOS):
                assert inst.risk[k] == 0, "malformed instrument leaf"
        self.t_instrument[inst.id] = inst
        leaf: bytes32 = self._hash_instrument(inst)
        self._touch(INSTRUMENT_KIND | inst.id, leaf, leaf)
    # the globals leaf commits to this rollup's genesis
    assert globals_before.genesis_hash == self.genesis_hash, "globals leaf is not this genesis"
    assert globals_before.deposit_count == staticcall self.rollup.deposits_consumed(), "deposit count is not the settled one"
    self.t_globals = globals_before
    leaf: bytes32 = self._hash_globals(globals_before)
    self._touch(GLOBALS_KEY, leaf, leaf)
    self.t_queue_hash = staticcall self.rollup.deposit_hashes(globals_before.deposit_count)
    self.t_withdrawals = []


@external
def submit_batch(
    new_root: bytes32,
    words: Bytes[MAX_SEGMENTS * SEGMENT_BYTES],
    proofs: DynArray[uint256[8], MAX_SEGMENTS],
    instruments: DynArray[Instrument, MAX_INSTRUMENTS],
    globals_before: Globals,
    signatures: DynArray[uint256[3], MAX_SIGNATURES],
    oracles: DynArray[OracleUpdate, MAX_ORACLE],
    proof: MultiProof,
):
    """Settle the next batch; reverts with the first check that fails. `words` holds every
    segment's public words (32 bytes each, N_SLOTS * SLOT_WORDS per segment, in segment order)
    and `proofs` one proof per segment: packed bytes, so that a slot's words are one copy and a
    block of zero words one hash (as an array of structs, copying them word by word cost about
    3 M gas for four segments)."""
    # one batch per transaction: the transient scratch (key map, instruments) is the batch's own
    assert self.t_epoch == 0, "one batch per transaction"
    assert len(proofs) > 0, "a batch has at least one segment"
    # whole segments, one per proof
    assert len(words) == len(proofs) * SEGMENT_BYTES, "the words are not N_SLOTS * SLOT_WORDS per proof"
    number: uint256 = staticcall self.rollup.batch_number() + 1
    self._load_start(instruments, globals_before, proof)
    transactions: uint256 = 0
    n_signature: uint256 = 0
    n_oracle: uint256 = 0
    padded: bool = False
    words_hashes: DynArray[bytes32, MAX_SEGMENTS] = []
    for i: uint256 in range(len(proofs), bound=MAX_SEGMENTS):
        for j: uint256 in range(params.N_SLOTS):
            # the slot's words as an ABI-encoded array (offset, length, words): one copy
            slot: DynArray[uint256, params.SLOT_WORDS] = abi_decode(
                concat(convert(32, bytes32), convert(params.SLOT_WORDS, bytes32), slice(words, (i * params.N_SLOTS + j) * SLOT_BYTES, SLOT_BYTES)),
                DynArray[uint256, params.SLOT_WORDS],
            )
            result: SlotResult = self._process_slot(slot)
            kind: uint256 = result.kind
            if kind == ORACLE_UPDATE:
                assert n_oracle < len(oracles), "an oracle update's lists are missing"
                self._process_oracle(oracles[n_oracle], slot[TX + 10], slot[WIN_G + 2])
                n_oracle += 1
            if result.n_signers > 0:
                assert n_signature + result.n_signers <= len(signatures), "a signature is missing"
                self._check_signature(result.digest, signatures[n_signature], result.first)
                if result.n_signers == 2:
                    self._check_signature(result.digest, signatures[n_signature + 1], result.signer_b)
                n_signature += result.n_signers
            # segments are full but the last, and no segment is only padding
            assert kind == NOOP or not padded, "padding before the last transaction"
            assert kind != NOOP or j > 0, "a segment with no transaction"
            padded = padded or kind == NOOP
            if kind != NOOP:
                transactions += 1
        words_hashes.append(keccak256(slice(words, i * SEGMENT_BYTES, SEGMENT_BYTES)))
    # every signature and oracle update of the calldata is used
    assert n_signature == len(signatures) and n_oracle == len(oracles), "unused signatures or oracle updates"
    # Every segment's proof, for public inputs [number, i, words...], in one weighted batch check
    # (Groth16Verifier: why the weights are sound). The weights are drawn from every proof and
    # every public input (the words by their hash); the inputs are combined with them here, so
    # that the verifier does one multi-scalar multiplication for the batch. Inline, not in an
    # internal function: passing the words would copy them into a second buffer of their
    # maximum size (memory expansion: it cost 7.5M gas).
    seed: bytes32 = keccak256(abi_encode(number, proofs, words_hashes))
    rhos: DynArray[uint256, MAX_SEGMENTS] = []
    sum_rho: uint256 = 0
    combined: DynArray[uint256, params.N_PUBLIC] = []
    for k: uint256 in range(params.N_PUBLIC):
        combined.append(0)
    zero_block: bytes32 = keccak256(abi_encode(empty(uint256[ZERO_BLOCK])))
    for i: uint256 in range(len(proofs), bound=MAX_SEGMENTS):
        rho: uint256 = 1  # rho_0 = 1: if only proof 0 fails, the product fails whatever the weights
        if i > 0:
            rho = convert(keccak256(concat(seed, convert(i, bytes32))), uint256) >> 128
            if rho == 0:
                rho = 1  # a zero weight would leave proof i unchecked
        rhos.append(rho)
        sum_rho += rho
        combined[0] = uint256_addmod(combined[0], uint256_mulmod(rho, number, params.BN254_R), params.BN254_R)
        combined[1] = uint256_addmod(combined[1], uint256_mulmod(rho, i, params.BN254_R), params.BN254_R)
        at: uint256 = i * SEGMENT_BYTES
        for b: uint256 in range((SEGMENT_WORDS + ZERO_BLOCK - 1) // ZERO_BLOCK):
            first: uint256 = b * ZERO_BLOCK
            # most windows are zero words: a whole block of them is skipped with one hash
            if first + ZERO_BLOCK <= SEGMENT_WORDS:
                if keccak256(slice(words, at + 32 * first, 32 * ZERO_BLOCK)) == zero_block:
                    continue
            for k: uint256 in range(first, first + ZERO_BLOCK, bound=ZERO_BLOCK):
                if k == SEGMENT_WORDS:
                    break
                x: uint256 = extract32(words, at + 32 * k, output_type=uint256)
                if x == 0:
                    continue
                # canonical: x and x + r would verify the same proof (aliasing); rejected, never reduced
                assert x < params.BN254_R, concat("public input ", uint2str(k + 2), " >= r: not a canonical field element")
                combined[k + 2] = uint256_addmod(combined[k + 2], uint256_mulmod(rho, x, params.BN254_R), params.BN254_R)
    vk_sum: uint256[2] = staticcall self.verifier.compute_vk_x(combined, sum_rho % params.BN254_R)
    assert staticcall self.verifier.verify_weighted(proofs, rhos, vk_sum), "a segment proof does not verify"
    # the first and last value of every key: the rollup proves them against its root
    before: DynArray[bytes32, MAX_KEYS] = []
    after: DynArray[bytes32, MAX_KEYS] = []
    for k: uint256 in range(len(proof.keys), bound=MAX_KEYS):
        assert self.t_seen[k] == self.t_epoch, "the multiproof holds a key the batch does not touch"
        before.append(self.t_before[k])
        after.append(self.t_after[k])
    extcall self.rollup.settle(
        new_root, transactions, proof.keys, before, after, proof.siblings, proof.bitmap,
        self.t_globals.deposit_count, self.t_queue_hash, self.t_withdrawals
    )
