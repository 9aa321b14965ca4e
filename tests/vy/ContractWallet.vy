# pragma version 0.4.3
"""Test harness: a contract wallet. It deposits into the rollup but cannot sign anything (no key),
as a multisig or a smart account cannot sign an L2 message with an EOA key."""

interface Rollup:
    def open_account(amount: uint256) -> uint256: payable


@external
@payable
def open_account(rollup: address, amount: uint256) -> uint256:
    return extcall Rollup(rollup).open_account(amount, value=msg.value)
