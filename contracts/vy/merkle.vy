# pragma version 0.4.3
"""
@title Merkle checks of the settlement contract (stateless: `import merkle`)
@notice
    1. The state tree's multiproof, exactly `verifier/merkle.py`'s `compute_root_from_multiproof`
       at depth 32: keccak256(left ++ right) for every internal node, the empty leaf is 32 zero
       bytes, the empty subtree of level i hashes to zero[i] (zero[i+1] = keccak(zero[i] ++ zero[i])).
       The checker walks levels 0..31 holding the sorted known nodes of the level: a left child
       whose right neighbour is its sibling is hashed with it; any other node takes the next
       sibling slot. Slot s is bit (s % 256) of bitmap word s // 256 read as a big-endian uint256:
       1 = the next entry of `siblings`, 0 = the empty subtree zero[level]. A proof of no keys has
       one slot, the root itself. A well-formed proof uses every bitmap word (no trailing word,
       no bit set past the last slot) and every sibling; anything else reverts, so a malformed
       proof never yields a root.
    2. The withdrawal list tree: a plain binary Merkle tree over a list (see compute_list_root).

    Sizes. Vyper allocates memory at each array's maximum, an internal call copies its array
    arguments (calldata -> memory -> the callee's frame), and memory costs 3a + a**2/512 gas for
    a words once per transaction at its high-water mark: every word of bound is paid on every
    settlement, small proofs included.
    - MAX_KEYS = 256 keys (leaves touched by one batch).
    - MAX_BITMAP = 24: the exact worst case. The slots of k keys number
      sum_{i<32} nodes(i) - 2(k - 1) <= sum_{i<32} min(k, 2**(32-i)) - 2k + 2, which is 6,144 for
      k = 256 (less for fewer keys): 24 words of 256 slots. Every valid proof's bitmap fits.
    - MAX_SIBLINGS = 1,024: siblings are the NON-EMPTY slots only, so they are bounded by what
      the tree holds near the keys, not by the slot count. Measured on the state tree's layout
      (accounts dense from 0, 10 instrument leaves, globals): 256 keys among 1,000 accounts need
      370 siblings; among 10,000 accounts 200 keys need 950; among 100,000 accounts 111 keys need
      901 and 256 keys 1,893. Doubling the bound to 2,048 would add ~45k gas of memory to every
      settlement. A batch whose proof does not fit cannot settle in one call:
      `contracts/multiproof.py` raises ProofTooLarge before anything is sent.
"""

TREE_DEPTH: constant(uint256) = 32  # verifier.encoding.TREE_DEPTH: keys are < 2**32
MAX_KEYS: constant(uint256) = 256
MAX_SIBLINGS: constant(uint256) = 1024  # see the docstring
MAX_BITMAP: constant(uint256) = 24  # 6,144 slots: every proof of MAX_KEYS keys at depth 32
BITS_PER_WORD: constant(uint256) = 256  # slot >> 8 is its word, slot & 255 its bit

# the withdrawal list tree: at most MAX_LIST leaves per list; proofs of at most MAX_LIST_DEPTH levels
MAX_LIST: constant(uint256) = 512
MAX_LIST_DEPTH: constant(uint256) = 16


@internal
@pure
def compute_multiproof_root(
    keys: DynArray[uint256, MAX_KEYS],
    leaves: DynArray[bytes32, MAX_KEYS],
    siblings: DynArray[bytes32, MAX_SIBLINGS],
    bitmap: DynArray[bytes32, MAX_BITMAP],
) -> bytes32:
    """
    @notice The root of the depth-32 tree holding `leaves[i]` at `keys[i]` and the proof's
            siblings. Reverts on a malformed proof (the messages say which rule failed).
    @param keys Strictly increasing leaf keys, each < 2**32.
    @param leaves The leaf hash of each key (32 zero bytes: the key is absent).
    @param siblings The non-empty siblings, in slot order.
    @param bitmap Slot bits, 256 per word; bit s % 256 of word s // 256 (big-endian uint256).
    """
    # one leaf per key
    assert len(leaves) == len(keys), "multiproof: keys and leaves differ in number"
    n: uint256 = len(keys)
    # the level's known nodes, sorted by index: rewritten in place as the walk goes up
    index: uint256[MAX_KEYS] = empty(uint256[MAX_KEYS])
    node: bytes32[MAX_KEYS] = empty(bytes32[MAX_KEYS])
    for i: uint256 in range(n, bound=MAX_KEYS):
        # a key addresses one of the 2**32 leaves
        assert keys[i] < 1 << TREE_DEPTH, "multiproof: key outside the depth-32 tree"
        # strictly increasing keys: one proof per key set, and the walk's order
        assert i == 0 or keys[i] > keys[i - 1], "multiproof: keys must be strictly increasing"
        index[i] = keys[i]
        node[i] = leaves[i]

    zero: bytes32 = empty(bytes32)  # zero[level], the empty subtree of the current level
    slot: uint256 = 0  # next sibling slot
    used: uint256 = 0  # siblings taken so far
    bits: uint256 = 0  # the current bitmap word, shifted so that bit 0 is slot `slot`
    count: uint256 = n
    # counters below are bounded by MAX_KEYS and the slot count: unchecked adds cannot wrap
    for level: uint256 in range(TREE_DEPTH):
        parents: uint256 = 0
        i: uint256 = 0
        for _: uint256 in range(MAX_KEYS):
            if i >= count:
                break
            j: uint256 = index[i]
            h: bytes32 = node[i]
            if j & 1 == 0 and unsafe_add(i, 1) < count and index[unsafe_add(i, 1)] == unsafe_add(j, 1):
                # both children known: hash them together
                h = keccak256(concat(h, node[unsafe_add(i, 1)]))
                i = unsafe_add(i, 2)
            else:
                if slot & (BITS_PER_WORD - 1) == 0:
                    # every slot needs its bit
                    assert slot >> 8 < len(bitmap), "multiproof: bitmap too short"
                    bits = convert(bitmap[slot >> 8], uint256)
                sibling: bytes32 = zero
                if bits & 1 == 1:
                    # a set bit needs a sibling to take
                    assert used < len(siblings), "multiproof: too few siblings"
                    sibling = siblings[used]
                    used = unsafe_add(used, 1)
                bits >>= 1
                slot = unsafe_add(slot, 1)
                if j & 1 == 1:
                    h = keccak256(concat(sibling, h))
                else:
                    h = keccak256(concat(h, sibling))
                i = unsafe_add(i, 1)
            # parents <= i: the nodes still to read are never overwritten
            index[parents] = j >> 1
            node[parents] = h
            parents = unsafe_add(parents, 1)
        count = parents
        zero = keccak256(concat(zero, zero))

    root: bytes32 = node[0]
    if n == 0:
        # the empty key set has one slot, the root itself (bit 0: the empty tree); its bit is needed
        assert len(bitmap) > 0, "multiproof: bitmap too short"
        bits = convert(bitmap[0], uint256)
        root = zero
        if bits & 1 == 1:
            # a set bit needs a sibling to take
            assert len(siblings) > 0, "multiproof: too few siblings"
            root = siblings[0]
            used = 1
        bits >>= 1
        slot = 1

    needed: uint256 = (slot + BITS_PER_WORD - 1) // BITS_PER_WORD
    # no trailing bitmap word: one encoding per proof
    assert len(bitmap) == needed, "multiproof: bitmap has more words than its slots need"
    # bits past the last slot are zero
    assert bits == 0, "multiproof: bitmap has bits set past the last slot"
    # every sibling given is used
    assert used == len(siblings), "multiproof: too many siblings"
    return root


@internal
@pure
def compute_list_depth(count: uint256) -> uint256:
    """
    @notice Levels of the list tree of `count` leaves: the smallest d with 2**d >= count (0 for
            0 or 1 leaf). A claim must check its proof has exactly this many siblings.
    """
    # the list has a bounded length
    assert count <= MAX_LIST, "withdrawal list: too many leaves"
    depth: uint256 = 0
    for _: uint256 in range(MAX_LIST_DEPTH):
        if 1 << depth >= count:
            break
        depth += 1
    return depth


@internal
@pure
def compute_list_root(leaves: DynArray[bytes32, MAX_LIST]) -> bytes32:
    """
    @notice Root of the list tree: the leaves padded with 32 zero bytes to width 2**d, where d
            = compute_list_depth(len(leaves)), then keccak256(left ++ right) level by level up
            to one node. One leaf is its own root; the empty list's root is 32 zero bytes.
            Same as `contracts/merkle_list.py`'s compute_list_root.
    """
    width: uint256 = 1 << self.compute_list_depth(len(leaves))
    level: bytes32[MAX_LIST] = empty(bytes32[MAX_LIST])
    for i: uint256 in range(len(leaves), bound=MAX_LIST):
        level[i] = leaves[i]
    for _: uint256 in range(MAX_LIST_DEPTH):
        if width == 1:
            break
        width >>= 1
        for i: uint256 in range(width, bound=MAX_LIST // 2):
            level[i] = keccak256(concat(level[2 * i], level[2 * i + 1]))
    return level[0]


@internal
@pure
def compute_list_root_from_proof(leaf: bytes32, index: uint256, proof: DynArray[bytes32, MAX_LIST_DEPTH]) -> bytes32:
    """
    @notice The list root implied by `leaf` at position `index` and its siblings, lowest level
            first. The caller must also require len(proof) == compute_list_depth(count) for the
            list it committed to: a shorter proof would present an inner node as a leaf.
    """
    # the index addresses one of the 2**len(proof) positions
    assert index < 1 << len(proof), "withdrawal proof: index outside the tree"
    h: bytes32 = leaf
    for level: uint256 in range(len(proof), bound=MAX_LIST_DEPTH):
        if (index >> level) & 1 == 1:
            h = keccak256(concat(proof[level], h))
        else:
            h = keccak256(concat(h, proof[level]))
    return h
