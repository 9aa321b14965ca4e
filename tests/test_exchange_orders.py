"""Signed orders: wire models, EIP-712 digests against eth-account, signatures, admission checks."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from pydantic import ValidationError

from exchange.engine import admit, admit_all
from exchange.orders import (
    EIP712_TYPES,
    GTC,
    IOC,
    POST_ONLY,
    Cancel,
    CancelAll,
    InvalidOrder,
    Order,
    compute_message_digest,
    compute_order_id,
    get_typed_data,
    recover_signer,
    sign_message,
)
from exchange.records import CancelAllOrders, CancelOrder, PlaceOrder
from rollup.genesis import DEFAULT_GENESIS_TIME, default_genesis
from rollup.signing import PLACEHOLDER_SIGNATURE, dev_account_key, dev_oracle_key, get_address
from verifier.encoding import compute_signing_digest
from verifier.wire import OptionSeriesSpec, SigningDomain

GENESIS = default_genesis(get_address(dev_oracle_key(1)), n_perps=2, n_series=4)
DOMAIN = GENESIS.signing_domain
NOW_MS = DEFAULT_GENESIS_TIME * 1000 + 5_000
KEY = dev_account_key(1, 3)
ADDRESS = get_address(KEY)
OTHER_KEY = dev_account_key(1, 4)


def make_order(**changes) -> Order:
    fields = dict(
        account=3, instrument=0, is_buy=True, size=5, price=60_000_000, time_in_force=GTC,
        expiry=DEFAULT_GENESIS_TIME + 3600, client_id=42, nonce=1_767_225_600_123, signature=PLACEHOLDER_SIGNATURE,
    )
    return Order.model_validate({**fields, **changes})


def reference_digest(message, domain: SigningDomain = DOMAIN) -> bytes:
    signable = encode_typed_data(full_message=get_typed_data(message, domain))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


MESSAGES = [
    make_order(),
    make_order(is_buy=False, time_in_force=POST_ONLY, expiry=0, client_id=2**64 - 1),
    Cancel(account=3, instrument=1, order_id="0x" + "ab" * 32, signature=PLACEHOLDER_SIGNATURE),
    CancelAll(account=3, nonce=17, signature=PLACEHOLDER_SIGNATURE),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_digest_matches_eth_account(message) -> None:
    assert compute_message_digest(message, DOMAIN) == reference_digest(message)


def test_order_type_agrees_with_transaction_encoder() -> None:
    # the verifier's transaction encoder types Order the same way (no bytes32 in it)
    assert compute_message_digest(MESSAGES[0], DOMAIN) == compute_signing_digest(MESSAGES[0], DOMAIN)


def test_digest_bound_to_deployment_and_fields() -> None:
    order = make_order()
    other_chain = SigningDomain(DOMAIN.l1_chain_id + 1, DOMAIN.verifying_contract)
    other_contract = SigningDomain(DOMAIN.l1_chain_id, "0x" + "11" * 20)
    digests = {
        compute_message_digest(order, DOMAIN),
        compute_message_digest(order, other_chain),
        compute_message_digest(order, other_contract),
        compute_message_digest(make_order(is_buy=False), DOMAIN),
        compute_message_digest(make_order(nonce=order.nonce + 1), DOMAIN),
    }
    assert len(digests) == 5
    # the id does not depend on the signature
    assert compute_order_id(sign_message(order, KEY, DOMAIN), DOMAIN) == compute_order_id(order, DOMAIN)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_wallet_signature_recovers(message) -> None:
    """A wallet signs the typed data (eth-account), the exchange recovers the same address; our
    own signer makes the same signature."""
    signed = Account.sign_typed_data(KEY, full_message=get_typed_data(message, DOMAIN))
    from_wallet = message.model_copy(update={"signature": "0x" + bytes(signed.signature).hex()})
    assert recover_signer(from_wallet, DOMAIN) == ADDRESS
    assert sign_message(message, KEY, DOMAIN).signature == from_wallet.signature


def test_eip712_types_listed_for_wallets() -> None:
    assert [f["name"] for f in EIP712_TYPES["Order"]] == [
        "account", "instrument", "is_buy", "size", "price", "time_in_force", "expiry", "client_id", "nonce",
    ]
    assert get_typed_data(MESSAGES[2], DOMAIN)["types"]["Cancel"][2] == {"name": "order_id", "type": "bytes32"}


# --- bad orders: precise errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"size": 0}, "greater than 0"),
        ({"size": -3}, "greater than 0"),
        ({"price": 0}, "greater than 0"),
        ({"price": 2**56}, "less than"),
        ({"time_in_force": 3}, "time_in_force must be one of 0 (GTC), 1 (IOC), 2 (post-only), got 3"),
        ({"account": 2**29}, "less than"),
        ({"instrument": -1}, "greater than or equal to 0"),
        ({"nonce": 2**64}, "less than"),
        ({"is_buy": "yes"}, "valid boolean"),
        ({"size": 1.5}, "valid integer"),
        ({"signature": "0x12"}, "signature must be 65 bytes"),
        ({"side": "buy"}, "Extra inputs are not permitted"),
    ],
    ids=str,
)
def test_invalid_order_shape(changes, message) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_order(**changes)


def signed(order: Order, key: bytes = KEY) -> Order:
    return sign_message(order, key, DOMAIN)


def test_admit_order() -> None:
    order = signed(make_order())
    command = admit(order, GENESIS, ADDRESS, NOW_MS)
    assert command == PlaceOrder(NOW_MS, compute_order_id(order, DOMAIN), 3, 0, True, 5, 60_000_000, GTC, order.expiry, order.nonce)


def test_admit_cancels() -> None:
    cancel = signed(Cancel(account=3, instrument=1, order_id="0x" + "ab" * 32, signature=PLACEHOLDER_SIGNATURE))
    cancel_all = signed(CancelAll(account=3, nonce=9, signature=PLACEHOLDER_SIGNATURE))
    assert admit(cancel, GENESIS, ADDRESS, NOW_MS) == CancelOrder(NOW_MS, 3, 1, "0x" + "ab" * 32)
    assert admit(cancel_all, GENESIS, ADDRESS, NOW_MS) == CancelAllOrders(NOW_MS, 3, 9)


def test_invalid_signature_wrong_key() -> None:
    with pytest.raises(InvalidOrder, match=f"order for account 3 is signed by {get_address(OTHER_KEY)}, not by the account's address {ADDRESS}"):
        admit(signed(make_order(), OTHER_KEY), GENESIS, ADDRESS, NOW_MS)


def test_invalid_signature_tampered() -> None:
    order = signed(make_order()).model_copy(update={"price": 1})
    with pytest.raises(InvalidOrder, match="is signed by 0x"):
        admit(order, GENESIS, ADDRESS, NOW_MS)


def test_invalid_signature_unsigned() -> None:
    with pytest.raises(InvalidOrder, match="invalid signature: v = 0, expected 27 or 28"):
        admit(make_order(), GENESIS, ADDRESS, NOW_MS)


def test_invalid_order_unknown_instrument() -> None:
    with pytest.raises(InvalidOrder, match=r"unknown instrument 99 \(the genesis lists: 0, 1, 2, 3, 4, 5\)"):
        admit(signed(make_order(instrument=99)), GENESIS, ADDRESS, NOW_MS)


def test_invalid_order_expired() -> None:
    order = signed(make_order(expiry=DEFAULT_GENESIS_TIME + 5))
    with pytest.raises(InvalidOrder, match=f"order expired at {DEFAULT_GENESIS_TIME + 5}"):
        admit(order, GENESIS, ADDRESS, NOW_MS)
    # one millisecond earlier it is still valid
    assert admit(order, GENESIS, ADDRESS, NOW_MS - 1).expiry == order.expiry


def test_invalid_order_series_expired() -> None:
    series = next(s for s in GENESIS.instruments if isinstance(s, OptionSeriesSpec))
    order = signed(make_order(instrument=series.id, expiry=0))
    assert admit(order, GENESIS, ADDRESS, series.expiry * 1000 - 1).instrument == series.id
    with pytest.raises(InvalidOrder, match=f"option series {series.id} \\({series.name}\\) expired at {series.expiry}"):
        admit(order, GENESIS, ADDRESS, series.expiry * 1000)


def test_invalid_cancel_unknown_instrument() -> None:
    cancel = signed(Cancel(account=3, instrument=77, order_id="0x" + "ab" * 32, signature=PLACEHOLDER_SIGNATURE))
    with pytest.raises(InvalidOrder, match="cancel names unknown instrument 77"):
        admit(cancel, GENESIS, ADDRESS, NOW_MS)


def test_invalid_order_unknown_account() -> None:
    with pytest.raises(InvalidOrder, match="account 3 does not exist"):
        admit_all([signed(make_order())], GENESIS, {4: get_address(OTHER_KEY)}, NOW_MS)


def test_time_in_force_codes() -> None:
    assert (GTC, IOC, POST_ONLY) == (0, 1, 2)
    assert make_order(time_in_force=IOC).time_in_force == IOC


def test_invalid_signature_cancel_all_wrong_key() -> None:
    cancel_all = signed(CancelAll(account=3, nonce=9, signature=PLACEHOLDER_SIGNATURE), OTHER_KEY)
    with pytest.raises(InvalidOrder, match="cancel-all for account 3 is signed by 0x"):
        admit(cancel_all, GENESIS, ADDRESS, NOW_MS)
