# pragma version 0.4.3
"""
@title EIP-712 digests of the rollup's transactions, and signer recovery (stateless: `import eip712`)
@notice
    Equal to `verifier/encoding.py`'s `compute_signing_digest` for every transaction type:
    keccak256(0x1901 ++ domainSeparator ++ hashStruct(tx)) in the domain
    {name "ZK Derivatives Rollup", version "1", chainId, verifyingContract}: the L1's chain id and
    the Rollup contract's address (a contract computes the separator once, from `chain.id` and the
    Rollup's address, and passes it in), so a signature binds one deployment. The struct types are derived from the
    wire models (`verifier/wire.py`) in Python; here they are written out as readable strings,
    and a test checks each against `verifier.encoding.compute_encode_type`, so a change of the
    wire format breaks the test rather than the signatures.

    User transactions arrive as a segment slot's words (`verifier.segment.compute_tx_words`):
    `kind` is the index in `verifier.segment.SLOT_TYPES` (0 deposit, 1 withdraw, 2 transfer,
    3 perp_trade, 4 option_trade, 5 settle_expired, 6 liquidate) and `words` the eleven TxWords
    fields in order (account_a, account_b, instrument, quantity, price, fee, nonce_a, nonce_b,
    deposit_id, address, timestamp) as BN254 scalar-field elements: a signed value v is v mod r.
    The digest covers every word: a word the type does not carry must be zero (and a settlement's
    two nonce words equal), so the words the circuit sees are exactly the signed transaction's.

    Oracle updates keep their lists: compute_oracle_digest takes them as structs mirroring the
    wire models, lists sorted as signed (at most MAX_INSTRUMENTS entries each, risk arrays of
    at most params.N_SCENARIOS values; the node refuses other lengths).
"""

import params

MAX_INSTRUMENTS: constant(uint256) = 16  # entries per list of one oracle update (the fixtures list 10)

# secp256k1's group order n (checked against eth_keys.constants.SECPK1_N by the tests)
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
SECP256K1_HALF_N: constant(uint256) = SECP256K1_N // 2  # EIP-2: s <= n/2, no malleable twin

# --- domain and type strings (encodeType: the primary type, then referenced types by name) -----

DOMAIN_NAME: constant(String[32]) = "ZK Derivatives Rollup"
DOMAIN_VERSION: constant(String[8]) = "1"
DOMAIN_TYPE: constant(String[96]) = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"

DEPOSIT_TYPE: constant(String[128]) = "Deposit(uint256 deposit_id,uint256 account,address address,uint256 amount)"
WITHDRAW_TYPE: constant(String[128]) = "Withdraw(uint256 account,uint256 amount,uint256 nonce)"
TRANSFER_TYPE: constant(String[128]) = "Transfer(uint256 sender,uint256 recipient,uint256 amount,uint256 nonce)"
PERP_TRADE_TYPE: constant(String[192]) = "PerpTrade(uint256 maker,uint256 taker,uint256 market,int256 size,uint256 price,uint256 fee,uint256 maker_nonce,uint256 taker_nonce)"
OPTION_TRADE_TYPE: constant(String[192]) = "OptionTrade(uint256 buyer,uint256 seller,uint256 series,uint256 quantity,uint256 premium,uint256 fee,uint256 buyer_nonce,uint256 seller_nonce)"
SETTLE_EXPIRED_TYPE: constant(String[128]) = "SettleExpired(uint256 sender,uint256 account,uint256 series,uint256 nonce)"
LIQUIDATE_TYPE: constant(String[128]) = "Liquidate(uint256 liquidator,uint256 account,uint256 instrument,int256 size,uint256 nonce)"

INSTRUMENT_PRICE_TYPE: constant(String[64]) = "InstrumentPrice(uint256 instrument,uint256 price)"
INSTRUMENT_FUNDING_TYPE: constant(String[64]) = "InstrumentFunding(uint256 market,int256 index)"
RISK_ARRAY_TYPE: constant(String[64]) = "RiskArray(uint256 instrument,int256[] values)"
ORACLE_UPDATE_TYPE: constant(String[352]) = "OracleUpdate(uint256 timestamp,uint256 previous_timestamp,InstrumentPrice[] marks,InstrumentFunding[] funding,RiskArray[] risk_arrays,InstrumentPrice[] settlements)InstrumentFunding(uint256 market,int256 index)InstrumentPrice(uint256 instrument,uint256 price)RiskArray(uint256 instrument,int256[] values)"

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(DOMAIN_TYPE)
DOMAIN_NAME_HASH: constant(bytes32) = keccak256(DOMAIN_NAME)
DOMAIN_VERSION_HASH: constant(bytes32) = keccak256(DOMAIN_VERSION)
DEPOSIT_TYPEHASH: constant(bytes32) = keccak256(DEPOSIT_TYPE)
WITHDRAW_TYPEHASH: constant(bytes32) = keccak256(WITHDRAW_TYPE)
TRANSFER_TYPEHASH: constant(bytes32) = keccak256(TRANSFER_TYPE)
PERP_TRADE_TYPEHASH: constant(bytes32) = keccak256(PERP_TRADE_TYPE)
OPTION_TRADE_TYPEHASH: constant(bytes32) = keccak256(OPTION_TRADE_TYPE)
SETTLE_EXPIRED_TYPEHASH: constant(bytes32) = keccak256(SETTLE_EXPIRED_TYPE)
LIQUIDATE_TYPEHASH: constant(bytes32) = keccak256(LIQUIDATE_TYPE)
INSTRUMENT_PRICE_TYPEHASH: constant(bytes32) = keccak256(INSTRUMENT_PRICE_TYPE)
INSTRUMENT_FUNDING_TYPEHASH: constant(bytes32) = keccak256(INSTRUMENT_FUNDING_TYPE)
RISK_ARRAY_TYPEHASH: constant(bytes32) = keccak256(RISK_ARRAY_TYPE)
ORACLE_UPDATE_TYPEHASH: constant(bytes32) = keccak256(ORACLE_UPDATE_TYPE)

# --- slot kinds (verifier.segment.SLOT_TYPES) and word positions (TxWords) --------------------

KIND_DEPOSIT: constant(uint256) = 0
KIND_WITHDRAW: constant(uint256) = 1
KIND_TRANSFER: constant(uint256) = 2
KIND_PERP_TRADE: constant(uint256) = 3
KIND_OPTION_TRADE: constant(uint256) = 4
KIND_SETTLE_EXPIRED: constant(uint256) = 5
KIND_LIQUIDATE: constant(uint256) = 6
N_USER_KINDS: constant(uint256) = 7  # kind 7, oracle_update, has its own digest

N_WORDS: constant(uint256) = 11
W_ACCOUNT_A: constant(uint256) = 0
W_ACCOUNT_B: constant(uint256) = 1
W_INSTRUMENT: constant(uint256) = 2
W_QUANTITY: constant(uint256) = 3
W_PRICE: constant(uint256) = 4
W_FEE: constant(uint256) = 5
W_NONCE_A: constant(uint256) = 6
W_NONCE_B: constant(uint256) = 7
W_DEPOSIT_ID: constant(uint256) = 8
W_ADDRESS: constant(uint256) = 9
W_TIMESTAMP: constant(uint256) = 10

# the words each kind carries, as bit masks over the word positions (compute_tx_words)
DEPOSIT_WORDS: constant(uint256) = (1 << W_ACCOUNT_A) | (1 << W_QUANTITY) | (1 << W_DEPOSIT_ID) | (1 << W_ADDRESS)
WITHDRAW_WORDS: constant(uint256) = (1 << W_ACCOUNT_A) | (1 << W_QUANTITY) | (1 << W_NONCE_A)
TRANSFER_WORDS: constant(uint256) = (1 << W_ACCOUNT_A) | (1 << W_ACCOUNT_B) | (1 << W_QUANTITY) | (1 << W_NONCE_A)
TRADE_WORDS: constant(uint256) = (1 << W_ACCOUNT_A) | (1 << W_ACCOUNT_B) | (1 << W_INSTRUMENT) | (1 << W_QUANTITY) | (1 << W_PRICE) | (1 << W_FEE) | (1 << W_NONCE_A) | (1 << W_NONCE_B)
SETTLE_EXPIRED_WORDS: constant(uint256) = (1 << W_ACCOUNT_A) | (1 << W_ACCOUNT_B) | (1 << W_INSTRUMENT) | (1 << W_NONCE_A) | (1 << W_NONCE_B)
LIQUIDATE_WORDS: constant(uint256) = (1 << W_ACCOUNT_A) | (1 << W_ACCOUNT_B) | (1 << W_INSTRUMENT) | (1 << W_QUANTITY) | (1 << W_NONCE_A)


struct InstrumentPrice:
    instrument: uint256
    price: uint256


struct InstrumentFunding:
    market: uint256
    index: int256


struct RiskArray:
    instrument: uint256
    values: DynArray[int256, params.N_SCENARIOS]


@internal
@pure
def compute_domain_separator(chain_id: uint256, verifying_contract: address) -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, chain_id, verifying_contract))


@internal
@pure
def _is_signed_below(x: uint256, bound: uint256) -> bool:
    """x is the field element of a v with -bound < v < bound."""
    return x < bound or (x < params.BN254_R and x > params.BN254_R - bound)


@internal
@pure
def check_words(kind: uint256, words: uint256[N_WORDS]):
    """
    @notice The wire bounds of `verifier/wire.py` on a user transaction's words (the circuit does
            not range-check every one of them: an amount of r - x would be -x), and zeros in the
            words the type does not carry.
    """
    assert kind < N_USER_KINDS, "eip712: not a user transaction"
    carried: uint256 = LIQUIDATE_WORDS
    if kind == KIND_DEPOSIT:
        carried = DEPOSIT_WORDS
    elif kind == KIND_WITHDRAW:
        carried = WITHDRAW_WORDS
    elif kind == KIND_TRANSFER:
        carried = TRANSFER_WORDS
    elif kind == KIND_PERP_TRADE or kind == KIND_OPTION_TRADE:
        carried = TRADE_WORDS
    elif kind == KIND_SETTLE_EXPIRED:
        carried = SETTLE_EXPIRED_WORDS
    for i: uint256 in range(N_WORDS):
        # the signature covers every word: one the type does not carry is zero
        assert carried & (1 << i) != 0 or words[i] == 0, "eip712: a word this transaction type does not carry is not zero"
    # ids, nonces, deposit ids, addresses (zero where not carried)
    assert words[W_ACCOUNT_A] < 1 << 29 and words[W_ACCOUNT_B] < 1 << 29, "eip712: account id out of range"
    assert words[W_INSTRUMENT] < 1 << 16, "eip712: instrument id out of range"
    assert words[W_NONCE_A] < 1 << 32 and words[W_NONCE_B] < 1 << 32 and words[W_DEPOSIT_ID] < 1 << 32, "eip712: nonce out of range"
    assert words[W_ADDRESS] < 1 << 160, "eip712: address word is wider than 160 bits"
    assert words[W_FEE] < 1 << 64, "eip712: fee out of range"
    quantity: uint256 = words[W_QUANTITY]
    price: uint256 = words[W_PRICE]
    if kind == KIND_PERP_TRADE:
        # a signed size, a positive price
        assert self._is_signed_below(quantity, 1 << 31), "eip712: size out of range"
        assert price > 0 and price < 1 << 56, "eip712: price out of range"
    elif kind == KIND_OPTION_TRADE:
        # a positive quantity, a premium that may be 0
        assert quantity > 0 and quantity < 1 << 31, "eip712: quantity out of range"
        assert price < 1 << 56, "eip712: premium out of range"
    elif kind == KIND_LIQUIDATE:
        assert self._is_signed_below(quantity, 1 << 31), "eip712: size out of range"
    elif kind != KIND_SETTLE_EXPIRED:
        # deposits, withdrawals, transfers: a positive amount
        assert quantity > 0 and quantity < 1 << 64, "eip712: amount out of range"


@internal
@pure
def compute_tx_digest(kind: uint256, words: uint256[N_WORDS], domain_separator: bytes32) -> bytes32:
    """
    @notice The EIP-712 digest (also the transaction hash) of a user transaction given as its
            slot words. Reverts if a word is not a field element, a word the type does not carry
            is not zero, or the kind is not a user transaction.
    """
    # oracle updates carry lists the words do not hold; every word within its wire bound
    self.check_words(kind, words)
    struct_hash: bytes32 = empty(bytes32)
    if kind == KIND_DEPOSIT:
        struct_hash = keccak256(abi_encode(DEPOSIT_TYPEHASH, words[W_DEPOSIT_ID], words[W_ACCOUNT_A], words[W_ADDRESS], words[W_QUANTITY]))
    elif kind == KIND_WITHDRAW:
        struct_hash = keccak256(abi_encode(WITHDRAW_TYPEHASH, words[W_ACCOUNT_A], words[W_QUANTITY], words[W_NONCE_A]))
    elif kind == KIND_TRANSFER:
        struct_hash = keccak256(abi_encode(TRANSFER_TYPEHASH, words[W_ACCOUNT_A], words[W_ACCOUNT_B], words[W_QUANTITY], words[W_NONCE_A]))
    elif kind == KIND_PERP_TRADE:
        # A is the taker, B the maker; the size is signed
        struct_hash = keccak256(abi_encode(
            PERP_TRADE_TYPEHASH, words[W_ACCOUNT_B], words[W_ACCOUNT_A], words[W_INSTRUMENT], self._to_int(words[W_QUANTITY]),
            words[W_PRICE], words[W_FEE], words[W_NONCE_B], words[W_NONCE_A],
        ))
    elif kind == KIND_OPTION_TRADE:
        # A is the buyer, B the seller
        struct_hash = keccak256(abi_encode(
            OPTION_TRADE_TYPEHASH, words[W_ACCOUNT_A], words[W_ACCOUNT_B], words[W_INSTRUMENT], words[W_QUANTITY],
            words[W_PRICE], words[W_FEE], words[W_NONCE_A], words[W_NONCE_B],
        ))
    elif kind == KIND_SETTLE_EXPIRED:
        # A is the settled account, B the sender; both nonce words carry the sender's nonce
        assert words[W_NONCE_B] == words[W_NONCE_A], "eip712: a settlement's two nonce words differ"
        struct_hash = keccak256(abi_encode(SETTLE_EXPIRED_TYPEHASH, words[W_ACCOUNT_B], words[W_ACCOUNT_A], words[W_INSTRUMENT], words[W_NONCE_A]))
    else:
        # liquidate: A is the liquidator, B the liquidated account; the size is signed
        struct_hash = keccak256(abi_encode(
            LIQUIDATE_TYPEHASH, words[W_ACCOUNT_A], words[W_ACCOUNT_B], words[W_INSTRUMENT], self._to_int(words[W_QUANTITY]), words[W_NONCE_A],
        ))
    return self._compute_digest(domain_separator, struct_hash)


@internal
@pure
def compute_oracle_digest(
    timestamp: uint256,
    previous_timestamp: uint256,
    marks: DynArray[InstrumentPrice, MAX_INSTRUMENTS],
    funding: DynArray[InstrumentFunding, MAX_INSTRUMENTS],
    risk_arrays: DynArray[RiskArray, MAX_INSTRUMENTS],
    settlements: DynArray[InstrumentPrice, MAX_INSTRUMENTS],
    domain_separator: bytes32,
) -> bytes32:
    """
    @notice The EIP-712 digest of an OracleUpdate, its lists as signed (`contracts/eip712_args.py`
            `encode_oracle_update` gives these arguments). Array members are hashed as EIP-712
            says: keccak256 of the concatenated struct hashes (of the values, for int256[]).
    """
    mark_hashes: DynArray[bytes32, MAX_INSTRUMENTS] = []
    for m: InstrumentPrice in marks:
        mark_hashes.append(keccak256(abi_encode(INSTRUMENT_PRICE_TYPEHASH, m.instrument, m.price)))
    funding_hashes: DynArray[bytes32, MAX_INSTRUMENTS] = []
    for f: InstrumentFunding in funding:
        funding_hashes.append(keccak256(abi_encode(INSTRUMENT_FUNDING_TYPEHASH, f.market, f.index)))
    risk_hashes: DynArray[bytes32, MAX_INSTRUMENTS] = []
    for r: RiskArray in risk_arrays:
        values_hash: bytes32 = keccak256(slice(abi_encode(r.values, ensure_tuple=False), 32, 32 * len(r.values)))
        risk_hashes.append(keccak256(abi_encode(RISK_ARRAY_TYPEHASH, r.instrument, values_hash)))
    settlement_hashes: DynArray[bytes32, MAX_INSTRUMENTS] = []
    for s: InstrumentPrice in settlements:
        settlement_hashes.append(keccak256(abi_encode(INSTRUMENT_PRICE_TYPEHASH, s.instrument, s.price)))
    struct_hash: bytes32 = keccak256(abi_encode(
        ORACLE_UPDATE_TYPEHASH,
        timestamp,
        previous_timestamp,
        self._hash_array(mark_hashes),
        self._hash_array(funding_hashes),
        self._hash_array(risk_hashes),
        self._hash_array(settlement_hashes),
    ))
    return self._compute_digest(domain_separator, struct_hash)


@internal
@pure
def recover(digest: bytes32, v: uint256, r: uint256, s: uint256) -> address:
    """
    @notice The address whose key signed `digest` with (v, r, s), checked as
            `verifier.encoding.parse_signature` does; reverts rather than return a wrong signer.
    """
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
def _compute_digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    return keccak256(concat(x"1901", domain_separator, struct_hash))


@internal
@pure
def _hash_array(hashes: DynArray[bytes32, MAX_INSTRUMENTS]) -> bytes32:
    """EIP-712 encoding of an array: keccak256 of its members' 32-byte encodings, concatenated."""
    return keccak256(slice(abi_encode(hashes, ensure_tuple=False), 32, 32 * len(hashes)))


@internal
@pure
def _to_int(word: uint256) -> int256:
    """A signed value from its field element (v mod r): the upper half of the field is negative."""
    if word > params.BN254_R // 2:
        return -convert(params.BN254_R - word, int256)
    return convert(word, int256)
