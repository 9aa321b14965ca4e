"""Wire models: bounds are part of the format, unknown fields and coerced types are refused."""

import json

import pytest
from pydantic import TypeAdapter, ValidationError

from verifier.wire import Genesis, OracleUpdate, PerpMarketSpec, StateDiff, Transaction

TX = TypeAdapter(Transaction)
SIG = "0x" + "11" * 65


def test_discriminated_union_picks_the_model_by_type():
    tx = TX.validate_json(json.dumps({"type": "withdraw", "account": 3, "amount": 5, "nonce": 0, "signature": SIG}))
    assert type(tx).__name__ == "Withdraw" and tx.amount == 5


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("account", -1, "greater than or equal to 0"),
        ("amount", "5", "valid integer"),
        ("amount", 0, "greater than 0"),
        ("amount", 2**64, "less than"),
        ("signature", "0x12", "65 bytes"),
        ("signature", "12" * 65, "0x-prefixed"),
    ],
)
def test_invalid_withdraw_field_is_named(field, value, fragment):
    data = {"type": "withdraw", "account": 3, "amount": 5, "nonce": 0, "signature": SIG, field: value}
    with pytest.raises(ValidationError) as err:
        TX.validate_json(json.dumps(data))
    assert field in str(err.value) and fragment in str(err.value)


def test_invalid_unknown_field_and_unknown_type():
    with pytest.raises(ValidationError, match="Extra inputs"):
        TX.validate_python({"type": "withdraw", "account": 3, "amount": 5, "nonce": 0, "signature": SIG, "x": 1})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        TX.validate_python({"type": "mint", "account": 3})


def test_addresses_are_checksummed_and_validated():
    tx = TX.validate_python(
        {"type": "deposit", "deposit_id": 0, "account": 1, "address": "0x" + "ab" * 20, "amount": 1}
    )
    assert tx.address == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    with pytest.raises(ValidationError, match="address"):
        TX.validate_python({"type": "deposit", "deposit_id": 0, "account": 1, "address": "0x12", "amount": 1})


def test_invalid_oracle_update_lists_must_be_sorted_and_unique():
    base = dict(timestamp=1, previous_timestamp=0, funding=[], risk_arrays=[], settlements=[], signature=SIG)
    OracleUpdate(marks=[{"instrument": 0, "price": 1}, {"instrument": 2, "price": 1}], **base)
    with pytest.raises(ValidationError, match="sorted"):
        OracleUpdate(marks=[{"instrument": 2, "price": 1}, {"instrument": 0, "price": 1}], **base)
    with pytest.raises(ValidationError, match="sorted"):
        OracleUpdate(marks=[{"instrument": 1, "price": 1}, {"instrument": 1, "price": 2}], **base)


def test_models_are_frozen_values():
    tx = TX.validate_python({"type": "withdraw", "account": 3, "amount": 5, "nonce": 0, "signature": SIG})
    with pytest.raises(ValidationError):
        tx.amount = 6  # type: ignore[misc]


def test_genesis_rejects_duplicate_instrument_ids():
    spec = PerpMarketSpec(id=0, name="BTC-PERP", underlying="BTC", contract_size=10)
    with pytest.raises(ValidationError, match="unique"):
        Genesis(l1_chain_id=1, rollup_address="0x" + "cd" * 20, oracle_address="0x" + "ab" * 20, instruments=[spec, spec])


def test_state_diff_roots_and_order_checked():
    root = "0x" + "00" * 32
    StateDiff(prev_root=root, new_root=root, leaves=[{"key": 1, "before": "0x", "after": "0x01"}])
    with pytest.raises(ValidationError, match="32 bytes"):
        StateDiff(prev_root="0x00", new_root=root, leaves=[])
    with pytest.raises(ValidationError, match="sorted"):
        StateDiff(
            prev_root=root,
            new_root=root,
            leaves=[{"key": 2, "before": "0x", "after": "0x"}, {"key": 1, "before": "0x", "after": "0x"}],
        )
