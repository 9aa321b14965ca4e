# pragma version 0.4.3
"""Test harness: `contracts/vy/eip712.vy`'s internals as externals; digests come with the gas
used by the internal call (argument copies included)."""

import eip712


@external
@view
def compute_tx_digest(kind: uint256, words: uint256[eip712.N_WORDS], domain_separator: bytes32) -> (bytes32, uint256):
    start: uint256 = msg.gas
    digest: bytes32 = eip712.compute_tx_digest(kind, words, domain_separator)
    return digest, start - msg.gas


@external
@view
def compute_oracle_digest(
    timestamp: uint256,
    previous_timestamp: uint256,
    marks: DynArray[eip712.InstrumentPrice, eip712.MAX_INSTRUMENTS],
    funding: DynArray[eip712.InstrumentFunding, eip712.MAX_INSTRUMENTS],
    risk_arrays: DynArray[eip712.RiskArray, eip712.MAX_INSTRUMENTS],
    settlements: DynArray[eip712.InstrumentPrice, eip712.MAX_INSTRUMENTS],
    domain_separator: bytes32,
) -> (bytes32, uint256):
    start: uint256 = msg.gas
    digest: bytes32 = eip712.compute_oracle_digest(timestamp, previous_timestamp, marks, funding, risk_arrays, settlements, domain_separator)
    return digest, start - msg.gas


@external
@view
def recover(digest: bytes32, v: uint256, r: uint256, s: uint256) -> (address, uint256):
    start: uint256 = msg.gas
    signer: address = eip712.recover(digest, v, r, s)
    return signer, start - msg.gas


@external
@pure
def compute_domain_separator(chain_id: uint256, verifying_contract: address) -> bytes32:
    return eip712.compute_domain_separator(chain_id, verifying_contract)


@external
@pure
def get_secp256k1_n() -> uint256:
    return eip712.SECP256K1_N


@external
@pure
def get_type_strings() -> (String[128], String[128], String[128], String[192], String[192], String[128], String[128], String[352]):
    """encodeType of each SLOT_TYPES kind in order (0..6), then OracleUpdate's."""
    return (
        eip712.DEPOSIT_TYPE,
        eip712.WITHDRAW_TYPE,
        eip712.TRANSFER_TYPE,
        eip712.PERP_TRADE_TYPE,
        eip712.OPTION_TRADE_TYPE,
        eip712.SETTLE_EXPIRED_TYPE,
        eip712.LIQUIDATE_TYPE,
        eip712.ORACLE_UPDATE_TYPE,
    )


@external
@pure
def get_domain_strings() -> (String[32], String[8], String[96]):
    return eip712.DOMAIN_NAME, eip712.DOMAIN_VERSION, eip712.DOMAIN_TYPE
