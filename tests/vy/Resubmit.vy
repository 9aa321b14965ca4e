# pragma version ~=0.4.3
"""Test harness: send the same settlement calldata twice in one transaction."""


@external
def twice(target: address, data: Bytes[200000]):
    raw_call(target, data)
    raw_call(target, data)
