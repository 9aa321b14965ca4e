"""The segment circuit (version 4): a segment's state transition as a rank-1 constraint system.

- `layout`: the fixed-shape windows of a slot (private witness structures of the slot rules);
- `slot`: one slot's rules (`synthesize_slot`), the native rules of docs/state-model.md;
- `tree`, `poseidon`: the Poseidon state tree's paths and hashes in the circuit;
- `transition`: the whole segment (`synthesize_transition`, `build_transition_circuit`): every
  touched leaf opened against the root before, the slots in order with their L2 signatures, the
  root after, the records as public inputs (docs/v3.md);
- `transition_witness`: a segment's witness from the native rules (`compute_transition_witness`).
"""

# Bumped on any change of the segment circuit's constraints: keys made for another version are
# refused (`rollup setup --force` makes new ones). 3: the state transition (roots in the circuit);
# 4: the leaf's L2 key id, key registrations, L2 signatures verified in the circuit, two public
# inputs per slot (no signer words).
CIRCUIT_VERSION = "4"

__all__ = ["CIRCUIT_VERSION"]
