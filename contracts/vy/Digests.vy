# pragma version ~=0.4.3
"""
@title EIP-712 digests of the rollup's transactions, as a contract
@notice `BatchVerifier` calls these (the `eip712` module's functions) through a static call: with
        them inlined it would exceed EIP-170's 24,576-byte code limit. Stateless and pure.
"""

import eip712


@external
@pure
def compute_tx_digest(kind: uint256, words: uint256[eip712.N_WORDS], domain_separator: bytes32) -> bytes32:
    """The digest a user transaction's signers signed, from its slot words (bounds checked)."""
    return eip712.compute_tx_digest(kind, words, domain_separator)


@external
@pure
def check_words(kind: uint256, words: uint256[eip712.N_WORDS]) -> bool:
    """The wire bounds of a transaction's words (for deposits, which carry no signature on
    chain); reverts with the bound that fails, else True."""
    eip712.check_words(kind, words)
    return True


@external
@pure
def compute_oracle_digest(
    timestamp: uint256,
    previous_timestamp: uint256,
    marks: DynArray[eip712.InstrumentPrice, eip712.MAX_INSTRUMENTS],
    funding: DynArray[eip712.InstrumentFunding, eip712.MAX_INSTRUMENTS],
    risk_arrays: DynArray[eip712.RiskArray, eip712.MAX_INSTRUMENTS],
    settlements: DynArray[eip712.InstrumentPrice, eip712.MAX_INSTRUMENTS],
    domain_separator: bytes32,
) -> bytes32:
    """The digest the oracle signed."""
    return eip712.compute_oracle_digest(timestamp, previous_timestamp, marks, funding, risk_arrays, settlements, domain_separator)
