"""Wire models: the one format every side agrees on (sequencer, prover, verifier, contract).

Pydantic v2, frozen values, one discriminated union `Transaction` on the field `type`. Integers
only: amounts in micro-USD, prices in micro-USD per contract, sizes in whole contracts (see
`rollup/units.py` for the named decimals). Bounds are part of the format: they are the ranges the
circuits range-check, so a value outside them is refused at the door.

This module imports nothing from `rollup` or `prover`: the verifier reads published batches with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, Union

from eth_utils import is_hex_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# --- Named quantities and their bounds (the ranges a circuit can check) ---------------------------

ACCOUNT_ID_BITS = 29  # accounts occupy keys [0, 2**29) of the state tree
INSTRUMENT_ID_BITS = 16
AMOUNT_BITS = 64  # micro-USD: up to 1.8e13 USD
PRICE_BITS = 56  # micro-USD per contract
SIZE_BITS = 31  # whole contracts, signed where a direction is meant
NONCE_BITS = 32
RISK_VALUE_BITS = 63  # signed P&L of one contract per scenario, micro-USD
FUNDING_BITS = 63  # signed cumulative funding index, micro-USD per contract
TIMESTAMP_BITS = 40  # unix seconds
ORDER_NONCE_BITS = 64  # an order's nonce: wide enough for millisecond timestamps
CLIENT_ID_BITS = 64
ORDER_SLOTS = 8  # per account: (order nonce, filled) of the orders it fills (docs/exchange.md, "Fills")
MAX_SCENARIOS = 64
BPS = 10_000  # basis points in one

AccountId = Annotated[int, Field(ge=0, lt=2**ACCOUNT_ID_BITS, description="account id: its leaf in the state tree")]
InstrumentId = Annotated[int, Field(ge=0, lt=2**INSTRUMENT_ID_BITS, description="perpetual market or option series id")]
Amount = Annotated[int, Field(ge=0, lt=2**AMOUNT_BITS, description="micro-USD (1e-6 USD)")]
PositiveAmount = Annotated[int, Field(gt=0, lt=2**AMOUNT_BITS, description="micro-USD (1e-6 USD), > 0")]
Price = Annotated[int, Field(gt=0, lt=2**PRICE_BITS, description="micro-USD per contract, > 0")]
NonNegativePrice = Annotated[int, Field(ge=0, lt=2**PRICE_BITS, description="micro-USD per contract")]
Size = Annotated[int, Field(gt=-(2**SIZE_BITS), lt=2**SIZE_BITS, description="signed whole contracts")]
Quantity = Annotated[int, Field(gt=0, lt=2**SIZE_BITS, description="whole contracts, > 0")]
Nonce = Annotated[int, Field(ge=0, lt=2**NONCE_BITS)]
Timestamp = Annotated[int, Field(ge=0, lt=2**TIMESTAMP_BITS, description="unix seconds")]
RiskValue = Annotated[int, Field(gt=-(2**RISK_VALUE_BITS), lt=2**RISK_VALUE_BITS)]
FundingIndex = Annotated[int, Field(gt=-(2**FUNDING_BITS), lt=2**FUNDING_BITS)]
Bps = Annotated[int, Field(ge=0, le=BPS, description="basis points")]
KEY_ID_BITS = 248  # an L2 key's id: the low 248 bits of Poseidon(A.x, A.y) (verifier/l2auth.py)
KeyId = Annotated[int, Field(gt=0, lt=2**KEY_ID_BITS, description="L2 key id (verifier/l2auth.py), > 0")]
OrderNonce = Annotated[int, Field(ge=0, lt=2**ORDER_NONCE_BITS, description="an order's nonce: picks its fill slot (nonce mod ORDER_SLOTS)")]
ClientId = Annotated[int, Field(ge=0, lt=2**CLIENT_ID_BITS, description="the client's own id for the order")]

GTC = 0  # rests until filled, cancelled or expired
IOC = 1  # fills what it can at once; the rest is cancelled
POST_ONLY = 2  # rests without taking: refused if it would cross the book
TIME_IN_FORCE_NAMES = {GTC: "GTC", IOC: "IOC", POST_ONLY: "post-only"}


def _check_time_in_force(value: int) -> int:
    if value not in TIME_IN_FORCE_NAMES:
        choices = ", ".join(f"{code} ({name})" for code, name in TIME_IN_FORCE_NAMES.items())
        raise ValueError(f"time_in_force must be one of {choices}, got {value}")
    return value


TimeInForce = Annotated[int, Field(ge=0, description="0 GTC, 1 IOC, 2 post-only"), AfterValidator(_check_time_in_force)]


class WireModel(BaseModel):
    """Base of every wire model: frozen, no unknown fields, no silent coercion of types."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


_HEX_DIGITS = re.compile("[0-9a-fA-F]*")  # checked in C: a 50k-transaction file has 70k signatures


def _hex_bytes(value: object, length: int | None, what: str) -> str:
    """Validate a 0x-prefixed hex string (of `length` bytes if given); return it lower-cased."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{what} must be a 0x-prefixed hex string")
    body = value[2:]
    if len(body) % 2 or not _HEX_DIGITS.fullmatch(body):
        raise ValueError(f"{what} is not valid hex")
    if length is not None and len(body) != 2 * length:
        raise ValueError(f"{what} must be {length} bytes, got {len(body) // 2}")
    return "0x" + body.lower()


def _address(value: object) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError("address must be a 0x-prefixed 20-byte hex string")
    return to_checksum_address(value)


Address = Annotated[
    str, BeforeValidator(_address), Field(description="Ethereum address, 0x + 40 hex (stored checksummed)")
]
Signature = Annotated[
    str,
    BeforeValidator(lambda v: _hex_bytes(v, 65, "signature")),
    Field(description="secp256k1 signature r || s || v, 0x + 130 hex"),
]
L2_SIGNATURE_BYTES = 160  # A.x, A.y, R8.x, R8.y, S: five 32-byte big-endian integers (verifier/l2auth.py)
L2Signature = Annotated[
    str,
    BeforeValidator(lambda v: _hex_bytes(v, L2_SIGNATURE_BYTES, "L2 signature")),
    Field(description="EdDSA-Poseidon (BabyJubJub) signature with its public key: A.x || A.y || R8.x || R8.y || S, 0x + 320 hex"),
]
Bytes32 = Annotated[str, BeforeValidator(lambda v: _hex_bytes(v, 32, "value")), Field(description="32 bytes, 0x + 64 hex")]
HexBytes = Annotated[str, BeforeValidator(lambda v: _hex_bytes(v, None, "value")), Field(description="bytes, 0x-prefixed hex")]


# --- Transactions ---------------------------------------------------------------------------------


class Deposit(WireModel):
    """Credit collateral from the L1 deposit queue: entry `deposit_id` (consumed strictly in order,
    which is also its replay protection), made on L1 by `address` for `account`. The queue entry
    is the authorisation, so a deposit carries no L2 signature: a contract wallet, which cannot
    sign, deposits like anyone, and a deposit nobody signs cannot block the queue. The first
    deposit to an id creates the account bound to `address` (the L1 contract assigns new ids)."""

    type: Literal["deposit"] = "deposit"
    deposit_id: Nonce
    account: AccountId
    address: Address
    amount: PositiveAmount


class Withdraw(WireModel):
    """Move collateral out of the rollup (claimable on L1 after settlement). Signed with EIP-712 by
    the account's Ethereum address, not the L2 key: the contract checks it (`ecrecover` against the
    account's owner), so a forced withdrawal requested on L1 is always a transaction the sequencer
    can include."""

    type: Literal["withdraw"] = "withdraw"
    account: AccountId
    amount: PositiveAmount
    nonce: Nonce
    signature: Signature


class Transfer(WireModel):
    """Move collateral between two existing accounts. Like every trade, liquidation and
    settlement, signed with the sender's L2 key (verifier/l2auth.py), checked inside the proof."""

    type: Literal["transfer"] = "transfer"
    sender: AccountId
    recipient: AccountId
    amount: PositiveAmount
    nonce: Nonce
    signature: L2Signature


class PerpTrade(WireModel):
    """A perpetual trade at `price`. `size` > 0: the taker buys (goes longer) and the maker sells;
    `size` < 0 the reverse. The taker pays `fee` to the fee pool. Both sides sign the same message."""

    type: Literal["perp_trade"] = "perp_trade"
    maker: AccountId
    taker: AccountId
    market: InstrumentId
    size: Size
    price: Price
    fee: Amount
    maker_nonce: Nonce
    taker_nonce: Nonce
    maker_signature: L2Signature
    taker_signature: L2Signature


class OptionTrade(WireModel):
    """The buyer buys `quantity` contracts of an option series from the seller (who may open a
    short) at `premium` per contract; the buyer pays `fee` to the fee pool. Both sides sign."""

    type: Literal["option_trade"] = "option_trade"
    buyer: AccountId
    seller: AccountId
    series: InstrumentId
    quantity: Quantity
    premium: NonNegativePrice
    fee: Amount
    buyer_nonce: Nonce
    seller_nonce: Nonce
    buyer_signature: L2Signature
    seller_signature: L2Signature


class Liquidate(WireModel):
    """The liquidator takes over `size` contracts of `account`'s position in `instrument` at the
    mark price (signed as the position: it must reduce |position| without crossing zero), allowed
    only while the account's equity is below maintenance margin. The account pays a penalty to the
    insurance fund. Signed by the liquidator only."""

    type: Literal["liquidate"] = "liquidate"
    liquidator: AccountId
    account: AccountId
    instrument: InstrumentId
    size: Size
    nonce: Nonce  # the liquidator's
    signature: L2Signature


class SettleExpired(WireModel):
    """Cash-settle `account`'s position in an expired option series at the oracle's settlement
    price. Anyone registered may send it (a keeper); `sender` signs and pays the nonce."""

    type: Literal["settle_expired"] = "settle_expired"
    sender: AccountId
    account: AccountId
    series: InstrumentId
    nonce: Nonce
    signature: L2Signature


class RegisterKey(WireModel):
    """Bind the L2 key whose id is `key_id` to `account`, replacing any key it had (rotation),
    signed with EIP-712 by the account's Ethereum address: the one transaction the address signs
    on L2 (the contract recovers it with `ecrecover`, once per key, and compares it with `address`,
    which the circuit proves is the account's). The id, not the key, is signed and published: a
    key's id is 31 bytes of public data, and the contract cannot hash a BabyJubJub point cheaply.
    A wrong id locks nobody but the signer out, who registers again."""

    type: Literal["register_key"] = "register_key"
    account: AccountId
    address: Address
    key_id: KeyId
    nonce: Nonce
    signature: Signature


class Order(WireModel):
    """A limit order, signed with the account's L2 key (not a transaction: the matching engine
    rests and matches it, and a `Fill` carries the two orders it matched). Buy (`is_buy`) or sell
    up to `size` contracts in total, at `price` or better; as a taker pay at most `max_fee` per
    contract. It never fills once the L2 clock (the oracle time) reaches `expiry` (0: never).
    What the key signs: `verifier.l2auth.compute_order_message`; its id is that message."""

    type: Literal["order"] = "order"
    account: AccountId
    instrument: InstrumentId
    is_buy: bool
    size: Quantity
    price: Price  # the limit: micro-USD per contract
    time_in_force: TimeInForce
    expiry: Timestamp
    client_id: ClientId
    nonce: OrderNonce
    max_fee: NonNegativePrice = 0  # micro-USD per contract filled as the taker (0: the order pays no fee)
    signature: L2Signature


ORDER_FIELDS = ("account", "instrument", "is_buy", "size", "price", "time_in_force", "expiry", "client_id", "nonce", "max_fee")


class Fill(WireModel):
    """A match of two signed orders on one instrument (a perpetual or an option series): the taker
    gets `size` contracts (> 0: the taker buys, < 0: sells) from the maker at `price`, and pays
    `fee` into the fee pool. Each side's order travels as its fields and its L2 signature: account
    and nonce, the instrument, the direction (from the sign of `size`), and the `*_order_size`,
    `*_limit`, ... fields. The rules check both signatures, both limits, the taker's fee cap, both
    expiries and that no order fills beyond its size (its filled amount lives in the account's
    order slot `nonce % ORDER_SLOTS`); account nonces are not used."""

    type: Literal["fill"] = "fill"
    taker: AccountId
    maker: AccountId
    instrument: InstrumentId
    size: Size
    price: Price
    fee: Amount
    taker_nonce: OrderNonce
    maker_nonce: OrderNonce
    taker_order_size: Quantity
    taker_limit: Price
    taker_time_in_force: TimeInForce
    taker_expiry: Timestamp
    taker_client_id: ClientId
    taker_max_fee: NonNegativePrice
    maker_order_size: Quantity
    maker_limit: Price
    maker_time_in_force: TimeInForce
    maker_expiry: Timestamp
    maker_client_id: ClientId
    maker_max_fee: NonNegativePrice
    taker_signature: L2Signature
    maker_signature: L2Signature

    def get_order(self, side: str) -> Order:
        """The taker's or the maker's signed order (`side`: "taker" or "maker")."""
        is_buy = (self.size > 0) == (side == "taker")
        return Order(
            account=getattr(self, side), instrument=self.instrument, is_buy=is_buy, size=getattr(self, f"{side}_order_size"),
            price=getattr(self, f"{side}_limit"), time_in_force=getattr(self, f"{side}_time_in_force"),
            expiry=getattr(self, f"{side}_expiry"), client_id=getattr(self, f"{side}_client_id"),
            nonce=getattr(self, f"{side}_nonce"), max_fee=getattr(self, f"{side}_max_fee"),
            signature=getattr(self, f"{side}_signature"),
        )

    @classmethod
    def from_orders(cls, taker: Order, maker: Order, size: int, price: int, fee: int) -> "Fill":
        """The fill of `size` contracts (> 0, the taker's direction gives the sign) between two
        orders; the rules decide whether it is valid. ValueError for orders that cannot match at
        all (another instrument, the same side), which a matcher never pairs."""
        # a fill trades one instrument between a buyer and a seller
        if taker.instrument != maker.instrument or taker.is_buy == maker.is_buy:
            raise ValueError(
                f"orders do not match: taker {'buys' if taker.is_buy else 'sells'} instrument {taker.instrument}, "
                f"maker {'buys' if maker.is_buy else 'sells'} instrument {maker.instrument}"
            )
        sides = {}
        for name, order in (("taker", taker), ("maker", maker)):
            sides.update({
                name: order.account, f"{name}_nonce": order.nonce, f"{name}_order_size": order.size, f"{name}_limit": order.price,
                f"{name}_time_in_force": order.time_in_force, f"{name}_expiry": order.expiry, f"{name}_client_id": order.client_id,
                f"{name}_max_fee": order.max_fee, f"{name}_signature": order.signature,
            })
        return cls(instrument=taker.instrument, size=size if taker.is_buy else -size, price=price, fee=fee, **sides)


class InstrumentPrice(WireModel):
    instrument: InstrumentId
    price: NonNegativePrice


class InstrumentFunding(WireModel):
    market: InstrumentId
    index: FundingIndex


class RiskArray(WireModel):
    """P&L in micro-USD of ONE long contract of `instrument` under each scenario of the grid."""

    instrument: InstrumentId
    values: Annotated[list[RiskValue], Field(min_length=1, max_length=MAX_SCENARIOS)]


class OracleUpdate(WireModel):
    """Signed by the oracle key fixed at genesis. Timestamps strictly increase, and each update
    names the timestamp of the oracle's previous one (`previous_timestamp`; the genesis time for
    the first): the updates form a chain, so none can be skipped (a sequencer that could skip
    signed updates would choose the price path). Lists are sorted by instrument id with no
    duplicates (one canonical encoding per update)."""

    type: Literal["oracle_update"] = "oracle_update"
    timestamp: Timestamp
    previous_timestamp: Timestamp
    marks: list[InstrumentPrice]
    funding: list[InstrumentFunding]
    risk_arrays: list[RiskArray]
    settlements: list[InstrumentPrice]
    signature: Signature

    @model_validator(mode="after")
    def _sorted_unique(self) -> "OracleUpdate":
        if self.timestamp <= self.previous_timestamp:
            raise ValueError("timestamp must be after previous_timestamp")
        for field, key in (("marks", "instrument"), ("funding", "market"), ("risk_arrays", "instrument"), ("settlements", "instrument")):
            ids = [getattr(item, key) for item in getattr(self, field)]
            if any(a >= b for a, b in zip(ids, ids[1:])):
                raise ValueError(f"{field} must be sorted by {key} with no duplicates")
        return self


Transaction = Annotated[
    Union[Deposit, Withdraw, Transfer, PerpTrade, OptionTrade, Liquidate, SettleExpired, RegisterKey, OracleUpdate, Fill],
    Field(discriminator="type"),
]
TRANSACTION_TYPES: dict[str, type[WireModel]] = {
    m.model_fields["type"].default: m
    for m in (Deposit, Withdraw, Transfer, PerpTrade, OptionTrade, Liquidate, SettleExpired, RegisterKey, OracleUpdate, Fill)
}


# --- Genesis: instruments and parameters ---------------------------------------------------------


class PerpMarketSpec(WireModel):
    kind: Literal["perp"] = "perp"
    id: InstrumentId
    name: str
    underlying: str
    contract_size: Annotated[int, Field(gt=0, description="units of the underlying per contract, SIZE_DECIMALS fixed point")]


class OptionSeriesSpec(WireModel):
    kind: Literal["option"] = "option"
    id: InstrumentId
    name: str
    underlying: str
    contract_size: Annotated[int, Field(gt=0)]
    strike: Price  # micro-USD per contract
    expiry: Timestamp
    is_call: bool


InstrumentSpec = Annotated[Union[PerpMarketSpec, OptionSeriesSpec], Field(discriminator="kind")]


class RiskParameters(WireModel):
    maintenance_bps: Annotated[Bps, Field(gt=0)] = 5_000  # maintenance margin = this share of initial
    liquidation_penalty_bps: Bps = 100  # penalty on the liquidated notional, to the insurance fund
    n_scenarios: Annotated[int, Field(ge=1, le=MAX_SCENARIOS)] = 16
    max_positions: Annotated[int, Field(ge=1, le=64)] = 8  # per account: fixed leaf shape for circuits


@dataclass(frozen=True)
class SigningDomain:
    """The EIP-712 domain every signature is bound to: the L1 chain and the rollup contract the
    chain settles on (named by the genesis), so a transaction signed for one deployment is void
    on any other, whatever its L2 chain id."""

    l1_chain_id: int
    verifying_contract: str  # the Rollup contract's address, checksummed


class Genesis(WireModel):
    """The chain's constants. `l1_chain_id` and `rollup_address` name the settlement deployment
    (the EIP-712 domain's chainId and verifyingContract): the Rollup contract is deployed at a
    predictable CREATE address (deployer, nonce), so they are known before anything is signed."""

    chain_id: Annotated[int, Field(ge=1, lt=2**64, description="L2 chain id (the genesis hash's, not the signatures')")] = 424242
    l1_chain_id: Annotated[int, Field(ge=1, lt=2**64, description="chain id of the L1 the rollup settles on")]
    rollup_address: Annotated[Address, Field(description="the Rollup contract on that L1")]
    oracle_address: Address
    instruments: list[InstrumentSpec]
    risk: RiskParameters = RiskParameters()
    genesis_time: Timestamp = 0
    # the accounts tree of the state root (verifier/state_tree.py): 4-ary, this deep; account ids
    # beyond its 4^depth leaves are refused (12: 16.7 M accounts; tests use a shallow tree)
    account_tree_depth: Annotated[int, Field(ge=1, le=14)] = 12

    @model_validator(mode="after")
    def _unique_ids(self) -> "Genesis":
        ids = [i.id for i in self.instruments]
        if len(set(ids)) != len(ids):
            raise ValueError("instrument ids must be unique")
        return self

    @property
    def signing_domain(self) -> SigningDomain:
        return SigningDomain(self.l1_chain_id, self.rollup_address)


# --- Results: receipts, diffs, batches -----------------------------------------------------------


class Receipt(WireModel):
    index: Annotated[int, Field(ge=0)]  # position in the batch, submission order
    type: str
    tx_hash: Bytes32
    status: Literal["accepted", "rejected"]
    reason: str | None = None


class LeafDiff(WireModel):
    """One touched leaf of the state tree: its canonical bytes before and after ("0x" = empty)."""

    key: Annotated[int, Field(ge=0, lt=2**32)]
    before: HexBytes
    after: HexBytes


class StateDiff(WireModel):
    """Every leaf a batch touched, sorted by key, with its value before and after."""

    prev_root: Bytes32
    new_root: Bytes32
    leaves: list[LeafDiff]

    @model_validator(mode="after")
    def _sorted(self) -> "StateDiff":
        keys = [leaf.key for leaf in self.leaves]
        if any(a >= b for a, b in zip(keys, keys[1:])):
            raise ValueError("leaves must be sorted by key with no duplicates")
        return self


class Batch(WireModel):
    number: Annotated[int, Field(ge=1)]
    transactions: list[Transaction]
    receipts: list[Receipt]
    diff: StateDiff
