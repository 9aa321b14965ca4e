"""The segment circuit (version 6): a segment's state transition as a rank-1 constraint system.

- `layout`: the fixed-shape windows of a slot (private witness structures of the slot rules);
- `slot`: one slot's rules (`synthesize_slot`), the native rules of docs/state-model.md;
- `tree`, `poseidon`: the Poseidon state tree's paths and hashes in the circuit;
- `transition`: the whole segment (`synthesize_transition`, `build_transition_circuit`): every
  touched leaf opened against the root before, the slots in order with their L2 signatures, the
  root after, the records hashed (sha256) into one public input (docs/v3.md);
- `sha256`: SHA-256 in the circuit (the records hash the contract recomputes with the precompile);
- `transition_witness`: a segment's witness from the native rules (`compute_transition_witness`).
"""

# Bumped on any change of the segment circuit's constraints: keys made for another version are
# refused (`rollup setup --force` makes new ones). 3: the state transition (roots in the circuit);
# 4: the leaf's L2 key id, key registrations, L2 signatures verified in the circuit, two public
# inputs per slot (no signer words); 5: the records hashed (sha256) into one public input per segment;
# 6: fills (two L2-signed orders per slot) and the account leaf's order slots (a 6-input leaf hash).
CIRCUIT_VERSION = "6"

__all__ = ["CIRCUIT_VERSION"]
