"""Signed orders: wire models, what an L2 key signs (packed words under the domain tag), wallet
key derivation, admission checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from exchange.engine import admit, admit_all
from exchange.orders import (
    CANCEL_ALL_CODE,
    CANCEL_CODE,
    GTC,
    IOC,
    POST_ONLY,
    Cancel,
    CancelAll,
    InvalidOrder,
    Order,
    compute_message,
    compute_order_id,
    recover_signer,
    sign_message,
)
from exchange.records import CancelAllOrders, CancelOrder, PlaceOrder
from rollup.genesis import DEFAULT_GENESIS_TIME, default_genesis
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, derive_l2_key, dev_account_key, dev_oracle_key, get_address
from verifier.l2auth import get_domain_tag
from verifier.poseidon import poseidon
from verifier.wire import OptionSeriesSpec, SigningDomain

GENESIS = default_genesis(get_address(dev_oracle_key(1)), n_perps=2, n_series=4)
DOMAIN = GENESIS.signing_domain
NOW_MS = DEFAULT_GENESIS_TIME * 1000 + 5_000
KEY = dev_account_key(1, 3)  # the wallet's Ethereum key; orders are signed with the L2 key it derives
L2_KEY = derive_l2_key(KEY, DOMAIN, 0)
KEY_ID = L2_KEY.key_id
OTHER_KEY = dev_account_key(1, 4)
OTHER_KEY_ID = derive_l2_key(OTHER_KEY, DOMAIN, 0).key_id


def make_order(**changes) -> Order:
    fields = dict(
        account=3, instrument=0, is_buy=True, size=5, price=60_000_000, time_in_force=GTC,
        expiry=DEFAULT_GENESIS_TIME + 3600, client_id=42, nonce=1_767_225_600_123, max_fee=25,
        signature=PLACEHOLDER_L2_SIGNATURE,
    )
    return Order.model_validate({**fields, **changes})


MESSAGES = [
    make_order(),
    make_order(is_buy=False, time_in_force=POST_ONLY, expiry=0, client_id=2**64 - 1),
    Cancel(account=3, instrument=1, order_id="0x" + "0b" * 32, signature=PLACEHOLDER_L2_SIGNATURE),
    CancelAll(account=3, nonce=17, signature=PLACEHOLDER_L2_SIGNATURE),
]


def test_order_message_packs_its_fields() -> None:
    """Poseidon(domain tag, w0, w1), the fields big-endian at their widths after the code 0x80,
    a field never split across the two 31-byte words (as records are packed)."""
    o = make_order()
    w0 = bytes([0x80]) + o.account.to_bytes(4, "big") + o.instrument.to_bytes(2, "big") + bytes([1]) + o.size.to_bytes(4, "big")
    w0 += o.price.to_bytes(7, "big") + bytes([o.time_in_force]) + o.expiry.to_bytes(5, "big")
    w1 = o.client_id.to_bytes(8, "big") + o.nonce.to_bytes(8, "big") + o.max_fee.to_bytes(7, "big")
    words = [int.from_bytes(w.ljust(31, b"\0"), "big") for w in (w0, w1)]
    expected = poseidon([get_domain_tag(DOMAIN), *words])
    assert compute_message(o, DOMAIN) == expected
    assert compute_order_id(o, DOMAIN) == f"0x{expected:064x}"


def test_cancel_messages_pack_under_their_codes() -> None:
    cancel, cancel_all = MESSAGES[2], MESSAGES[3]
    w0 = int.from_bytes((bytes([CANCEL_CODE]) + (3).to_bytes(4, "big") + (1).to_bytes(2, "big")).ljust(31, b"\0"), "big")
    assert compute_message(cancel, DOMAIN) == poseidon([get_domain_tag(DOMAIN), w0, int("0b" * 32, 16)])
    w0 = int.from_bytes((bytes([CANCEL_ALL_CODE]) + (3).to_bytes(4, "big") + (17).to_bytes(8, "big")).ljust(31, b"\0"), "big")
    assert compute_message(cancel_all, DOMAIN) == poseidon([get_domain_tag(DOMAIN), w0, 0])


def test_message_bound_to_deployment_and_fields() -> None:
    order = make_order()
    other_chain = SigningDomain(DOMAIN.l1_chain_id + 1, DOMAIN.verifying_contract)
    other_contract = SigningDomain(DOMAIN.l1_chain_id, "0x" + "11" * 20)
    messages = {
        compute_message(order, DOMAIN),
        compute_message(order, other_chain),
        compute_message(order, other_contract),
        compute_message(make_order(is_buy=False), DOMAIN),
        compute_message(make_order(nonce=order.nonce + 1), DOMAIN),
        compute_message(make_order(max_fee=26), DOMAIN),
    }
    assert len(messages) == 6
    # the id does not depend on the signature
    assert compute_order_id(sign_message(order, KEY, DOMAIN), DOMAIN) == compute_order_id(order, DOMAIN)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_wallet_key_derives_the_signing_key(message) -> None:
    """A wallet's Ethereum key signs through the L2 key it derives; the signature verifies to that
    key's id (what RegisterKey put in the account's leaf)."""
    from_wallet = sign_message(message, KEY, DOMAIN)
    assert from_wallet == sign_message(message, L2_KEY, DOMAIN)
    assert recover_signer(from_wallet, DOMAIN) == KEY_ID


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
        ({"signature": "0x12"}, "L2 signature must be 160 bytes"),
        ({"max_fee": -1}, "greater than or equal to 0"),
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
    command = admit(order, GENESIS, KEY_ID, NOW_MS)
    assert command == PlaceOrder(NOW_MS, compute_order_id(order, DOMAIN), 3, 0, True, 5, 60_000_000, GTC, order.expiry, order.nonce)


def test_admit_cancels() -> None:
    cancel = signed(Cancel(account=3, instrument=1, order_id="0x" + "0b" * 32, signature=PLACEHOLDER_L2_SIGNATURE))
    cancel_all = signed(CancelAll(account=3, nonce=9, signature=PLACEHOLDER_L2_SIGNATURE))
    assert admit(cancel, GENESIS, KEY_ID, NOW_MS) == CancelOrder(NOW_MS, 3, 1, "0x" + "0b" * 32)
    assert admit(cancel_all, GENESIS, KEY_ID, NOW_MS) == CancelAllOrders(NOW_MS, 3, 9)


def test_invalid_signature_wrong_key() -> None:
    with pytest.raises(InvalidOrder, match=f"order for account 3 is signed by L2 key id {OTHER_KEY_ID:#x}, not by the account's key id {KEY_ID:#x}"):
        admit(signed(make_order(), OTHER_KEY), GENESIS, KEY_ID, NOW_MS)


def test_invalid_signature_tampered() -> None:
    order = signed(make_order()).model_copy(update={"price": 1})
    with pytest.raises(InvalidOrder, match="invalid signature: the L2 signature does not match the order and its key"):
        admit(order, GENESIS, KEY_ID, NOW_MS)


def test_invalid_signature_unsigned() -> None:
    with pytest.raises(InvalidOrder, match="invalid signature: the public key is not a BabyJubJub point"):
        admit(make_order(), GENESIS, KEY_ID, NOW_MS)


def test_invalid_order_unknown_instrument() -> None:
    with pytest.raises(InvalidOrder, match=r"unknown instrument 99 \(the genesis lists: 0, 1, 2, 3, 4, 5\)"):
        admit(signed(make_order(instrument=99)), GENESIS, KEY_ID, NOW_MS)


def test_invalid_order_expired() -> None:
    order = signed(make_order(expiry=DEFAULT_GENESIS_TIME + 5))
    with pytest.raises(InvalidOrder, match=f"order expired at {DEFAULT_GENESIS_TIME + 5}"):
        admit(order, GENESIS, KEY_ID, NOW_MS)
    # one millisecond earlier it is still valid
    assert admit(order, GENESIS, KEY_ID, NOW_MS - 1).expiry == order.expiry


def test_invalid_order_series_expired() -> None:
    series = next(s for s in GENESIS.instruments if isinstance(s, OptionSeriesSpec))
    order = signed(make_order(instrument=series.id, expiry=0))
    assert admit(order, GENESIS, KEY_ID, series.expiry * 1000 - 1).instrument == series.id
    with pytest.raises(InvalidOrder, match=f"option series {series.id} \\({series.name}\\) expired at {series.expiry}"):
        admit(order, GENESIS, KEY_ID, series.expiry * 1000)


def test_invalid_cancel_unknown_instrument() -> None:
    cancel = signed(Cancel(account=3, instrument=77, order_id="0x" + "0b" * 32, signature=PLACEHOLDER_L2_SIGNATURE))
    with pytest.raises(InvalidOrder, match="cancel names unknown instrument 77"):
        admit(cancel, GENESIS, KEY_ID, NOW_MS)


def test_invalid_order_unknown_account() -> None:
    with pytest.raises(InvalidOrder, match="account 3 does not exist"):
        admit_all([signed(make_order())], GENESIS, {4: OTHER_KEY_ID}, NOW_MS)


def test_time_in_force_codes() -> None:
    assert (GTC, IOC, POST_ONLY) == (0, 1, 2)
    assert make_order(time_in_force=IOC).time_in_force == IOC


def test_invalid_signature_cancel_all_wrong_key() -> None:
    cancel_all = signed(CancelAll(account=3, nonce=9, signature=PLACEHOLDER_L2_SIGNATURE), OTHER_KEY)
    with pytest.raises(InvalidOrder, match="cancel-all for account 3 is signed by L2 key id 0x"):
        admit(cancel_all, GENESIS, KEY_ID, NOW_MS)


def test_invalid_order_account_without_key() -> None:
    with pytest.raises(InvalidOrder, match="order for account 3: the account has no L2 key registered"):
        admit(signed(make_order()), GENESIS, 0, NOW_MS)


def test_invalid_cancel_order_id_not_an_id() -> None:
    with pytest.raises(ValidationError, match="order_id is not an order's id"):
        Cancel(account=3, instrument=1, order_id="0x" + "ff" * 32, signature=PLACEHOLDER_L2_SIGNATURE)
