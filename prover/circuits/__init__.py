"""The segment circuit (version 3): a segment's state transition as a rank-1 constraint system.

- `layout`: the fixed-shape windows of a slot (private witness structures of the slot rules);
- `slot`: one slot's rules (`synthesize_slot`), the native rules of docs/state-model.md;
- `tree`, `poseidon`: the Poseidon state tree's paths and hashes in the circuit;
- `transition`: the whole segment (`synthesize_transition`, `build_transition_circuit`): every
  touched leaf opened against the root before, the slots in order, the root after, the records and
  signer words as public inputs (docs/v3.md);
- `transition_witness`: a segment's witness from the native rules (`compute_transition_witness`).
"""

# Bumped on any change of the segment circuit's constraints: keys made for another version are
# refused (`rollup setup --force` makes new ones). 3: the state transition (roots in the circuit).
CIRCUIT_VERSION = "3"

__all__ = ["CIRCUIT_VERSION"]
