"""The rollup node: domain, state, Merkle tree, sequencer, risk engine, storage and CLI."""
