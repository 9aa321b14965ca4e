# pragma version 0.4.3
"""
@title Groth16 batch verifier (BN254) for the segment circuit
@notice Checks k segment proofs of one verifying key with ONE pairing check of k + 3 pairs through
        the EIP-197 precompiles 0x06 (ecAdd), 0x07 (ecMul) and 0x08 (ecPairing).

        Layouts (EIP-197): G1 = (x, y); G2 = (x_imag, x_real, y_imag, y_real); the identity is all
        zeros. A proof is (A.x, A.y, B.x_imag, B.x_real, B.y_imag, B.y_real, C.x, C.y).
        The IC points (one per public input, plus one) live in data contracts (64 bytes each,
        x || y, after a leading STOP byte), every chunk but the last holding the same number.

        Use: vk_x_i = compute_vk_x(inputs_i) for every segment, then verify_batch(proofs, vk_xs);
        or, one multi-scalar multiplication for the whole batch (what BatchVerifier does): draw
        the weights rho_i from every proof and every input, then
        vk_sum = compute_vk_x([sum_i rho_i x_ij mod r]_j, sum_i rho_i) and
        verify_weighted(proofs, rhos, vk_sum). Every proof shares the key, so
        sum_i rho_i vk_x_i = (sum_i rho_i) IC_0 + sum_j (sum_i rho_i x_ij) IC_{j+1}: one ecMul
        per public input that is non-zero in any proof, instead of one per proof and input.
        Malformed input (count, input >= r, coordinate >= q, a point off its curve or outside
        its subgroup) reverts with a reason; a well-formed batch that fails the pairing equation
        returns False (the caller reverts with its own reason).

        The batch equation, with weights rho_i:
            prod_i e(-rho_i A_i, B_i) * e(sum_i rho_i vk_x_i, gamma) * e(sum_i rho_i C_i, delta)
                * e((sum_i rho_i) alpha, beta) == 1
        Proof i alone satisfies X_i == 1 with
            X_i = e(-A_i, B_i) e(vk_x_i, gamma) e(C_i, delta) e(alpha, beta),
        and the batch equation is prod_i X_i^rho_i == 1 (bilinearity in the G1 argument).

        Why Fiat-Shamir weights are sound here. Every X_i lies in GT, the group of r-th roots of
        unity in Fq12 (the final exponentiation maps there), of prime order r, so X_j != 1 has
        order r. rho_0 = 1 and rho_i (i >= 1) is 128 bits of keccak256(seed, i), where seed =
        keccak256 of every proof and every vk_x exactly as they enter the equation (the key is
        fixed in this contract); with verify_weighted, the caller's seed must bind every proof
        and every public input instead (vk_x_i is a function of the inputs). The X_i are
        therefore fixed before the weights are known. If
        some X_j != 1 with j >= 1, then for any values of the other weights at most one residue
        of rho_j mod r satisfies the equation, so one hash evaluation passes with probability
        <= 2^-127 (2^-128, plus 2^-128 for mapping a zero weight to 1; a zero weight would leave
        its proof unchecked); a prover grinding 2^t batch variants succeeds with <= 2^(t-127).
        If only X_0 != 1 the product is X_0 != 1 and the batch fails whatever the weights, which
        is why rho_0 can be 1 (one ecMul fewer per term). Bilinearity in the G1 argument, which
        the scaling relies on, needs B_i in G2: the precompile enforces it (below). G1 has
        cofactor 1 on BN254, so a G1 point on the curve is in the subgroup.

        What the precompiles check (EIP-196/197; py-evm 0.12 implements them with py_ecc, read
        in eth/precompiles/ecpairing.py and confirmed by tests/test_l1_groth16.py): every
        coordinate < q, every G1 point on y^2 = x^3 + 3, every G2 point on the twist AND in the
        order-r subgroup (py-evm multiplies it by r), the identity encoded as zeros allowed.
        Invalid input makes the precompile fail, consuming the gas given to it: every call here
        passes exactly the precompile's price, so a failure costs only that and leaves gas to
        find the culprit and revert with a reason.
"""

import params

EC_ADD: constant(address) = 0x0000000000000000000000000000000000000006
EC_MUL: constant(address) = 0x0000000000000000000000000000000000000007
EC_PAIRING: constant(address) = 0x0000000000000000000000000000000000000008
# EIP-1108 prices: each call gets exactly its price (a failed precompile burns all it was given)
GAS_EC_ADD: constant(uint256) = 150
GAS_EC_MUL: constant(uint256) = 6000
GAS_PAIRING_BASE: constant(uint256) = 45000
GAS_PAIRING_PER_PAIR: constant(uint256) = 34000

MAX_BATCH: constant(uint256) = 16
MAX_CHUNKS: constant(uint256) = 16
MAX_PAIRS: constant(uint256) = MAX_BATCH + 3
PAIR_WORDS: constant(uint256) = 6
PAIR_SIZE: constant(uint256) = 192
G1_SIZE: constant(uint256) = 64
WEIGHT_SHIFT: constant(uint256) = 128  # rho_i: the top 128 bits of a keccak word
ZERO_BLOCK: constant(uint256) = 32  # public inputs skipped at once when all zero
N_ZERO_BLOCKS: constant(uint256) = (params.N_PUBLIC + ZERO_BLOCK - 1) // ZERO_BLOCK

ALPHA1: public(immutable(uint256[2]))
BETA2: public(immutable(uint256[4]))
GAMMA2: public(immutable(uint256[4]))
DELTA2: public(immutable(uint256[4]))
IC_CHUNKS: public(immutable(DynArray[address, MAX_CHUNKS]))
IC_PER_CHUNK: public(immutable(uint256))
N_IC: public(immutable(uint256))
ZERO_BLOCK_HASH: immutable(bytes32)  # keccak256 of ZERO_BLOCK zero words


@deploy
def __init__(
    alpha1: uint256[2],
    beta2: uint256[4],
    gamma2: uint256[4],
    delta2: uint256[4],
    ic_chunks: DynArray[address, MAX_CHUNKS],
    n_ic: uint256,
):
    # one IC point per public input of the segment circuit, plus the constant one
    assert n_ic == params.N_PUBLIC + 1, "verifying key: IC must hold N_PUBLIC + 1 points for this segment shape"
    # the IC points are stored somewhere
    assert len(ic_chunks) > 0, "verifying key: no IC data contract"
    per_chunk: uint256 = self._count_chunk_points(ic_chunks[0])
    # a chunk holds at least one point
    assert per_chunk > 0, "verifying key: empty IC data contract"
    total: uint256 = 0
    for i: uint256 in range(len(ic_chunks), bound=MAX_CHUNKS):
        points: uint256 = self._count_chunk_points(ic_chunks[i])
        # every chunk but the last is full, so point j is in chunk j // per_chunk
        assert points == per_chunk or (i == len(ic_chunks) - 1 and points > 0), "verifying key: IC chunks of uneven size"
        total += points
    # the chunks hold exactly the key's IC points
    assert total == n_ic, "verifying key: IC data contracts do not hold n_ic points"
    # alpha is a G1 point (ecAdd fails otherwise)
    ok: bool = False
    point: uint256[2] = empty(uint256[2])
    ok, point = self._ec_add(alpha1, empty(uint256[2]))
    assert ok, "verifying key: alpha is not on the curve"
    ALPHA1 = alpha1
    BETA2 = beta2
    GAMMA2 = gamma2
    DELTA2 = delta2
    IC_CHUNKS = ic_chunks
    IC_PER_CHUNK = per_chunk
    N_IC = n_ic
    ZERO_BLOCK_HASH = keccak256(abi_encode(empty(uint256[ZERO_BLOCK])))
    # beta, gamma, delta in G2 (the pairing fails otherwise)
    assert self._is_g2(beta2), "verifying key: beta is not in G2"
    assert self._is_g2(gamma2), "verifying key: gamma is not in G2"
    assert self._is_g2(delta2), "verifying key: delta is not in G2"


# --- precompiles ---------------------------------------------------------------------------------


@internal
@view
def _ec_add(p: uint256[2], q: uint256[2]) -> (bool, uint256[2]):
    """p + q, or (False, 0) when a point is not on the curve."""
    ok: bool = False
    out: Bytes[64] = b""
    ok, out = raw_call(
        EC_ADD, abi_encode(p, q), max_outsize=64, gas=GAS_EC_ADD, is_static_call=True, revert_on_failure=False
    )
    if not ok:
        return False, empty(uint256[2])
    return True, [extract32(out, 0, output_type=uint256), extract32(out, 32, output_type=uint256)]


@internal
@view
def _ec_mul(p: uint256[2], s: uint256) -> (bool, uint256[2]):
    """s * p, or (False, 0) when p is not on the curve."""
    ok: bool = False
    out: Bytes[64] = b""
    ok, out = raw_call(
        EC_MUL, abi_encode(p, s), max_outsize=64, gas=GAS_EC_MUL, is_static_call=True, revert_on_failure=False
    )
    if not ok:
        return False, empty(uint256[2])
    return True, [extract32(out, 0, output_type=uint256), extract32(out, 32, output_type=uint256)]


@internal
@view
def _scale(p: uint256[2], s: uint256) -> (bool, uint256[2]):
    """s * p; for s == 1 an ecAdd with the identity checks the point for 150 gas instead of 6000."""
    if s == 1:
        return self._ec_add(p, empty(uint256[2]))
    return self._ec_mul(p, s)


@internal
@view
def _is_g2(q: uint256[4]) -> bool:
    """True iff q is a G2 point: e(O, q) makes the precompile check q alone."""
    ok: bool = False
    out: Bytes[32] = b""
    ok, out = raw_call(
        EC_PAIRING,
        abi_encode(empty(uint256[2]), q),
        max_outsize=32,
        gas=GAS_PAIRING_BASE + GAS_PAIRING_PER_PAIR,
        is_static_call=True,
        revert_on_failure=False,
    )
    return ok


@internal
@pure
def _negate(p: uint256[2]) -> uint256[2]:
    """-p for a point with coordinates < q (the identity stays the identity)."""
    if p[1] == 0:
        return p
    return [p[0], params.BN254_Q - p[1]]


# --- verifying key -------------------------------------------------------------------------------


@internal
@view
def _count_chunk_points(chunk: address) -> uint256:
    size: uint256 = chunk.codesize
    # a data contract: a STOP byte, then whole 64-byte points
    assert size > 1 and (size - 1) % G1_SIZE == 0, "verifying key: an IC data contract is not whole 64-byte points"
    return (size - 1) // G1_SIZE


@internal
@view
def _get_ic(j: uint256) -> uint256[2]:
    """IC point j, read from its data contract (after the leading STOP byte)."""
    chunk: address = IC_CHUNKS[j // IC_PER_CHUNK]
    data: Bytes[64] = slice(chunk.code, 1 + (j % IC_PER_CHUNK) * G1_SIZE, 64)
    return [extract32(data, 0, output_type=uint256), extract32(data, 32, output_type=uint256)]


@external
@view
def compute_vk_x(inputs: DynArray[uint256, params.N_PUBLIC], ic0_scalar: uint256 = 1) -> uint256[2]:
    """
    @notice vk_x = ic0_scalar * IC_0 + sum_j inputs[j] * IC_{j+1}. With the default ic0_scalar of
            1 it is the public inputs' point of one proof. With inputs[j] = sum_i rho_i x_ij mod r
            and ic0_scalar = sum_i rho_i it is sum_i rho_i vk_x_i, the combined point of a weighted
            batch (`verify_weighted`): one multi-scalar multiplication for the whole batch, since
            every proof shares the key. Zero inputs cost nothing and inputs equal to 1 one ecAdd
            (no ecMul). The windows are mostly zero words: a block of ZERO_BLOCK of them is
            skipped with one keccak256 of its calldata (about 400 gas) instead of ZERO_BLOCK loop
            iterations (about 100 gas each).
    """
    # one value per public input of the circuit
    assert len(inputs) == params.N_PUBLIC, concat("expected ", uint2str(params.N_PUBLIC), " public inputs, got ", uint2str(len(inputs)))
    # a canonical scalar, as the inputs are
    assert ic0_scalar < params.BN254_R, "the IC_0 scalar is >= r: not a canonical field element"
    # where `inputs`' words sit in the calldata: after the selector, the array's offset and its length
    words_at: uint256 = 4 + convert(slice(msg.data, 4, 32), uint256) + 32
    acc: uint256[2] = self._get_ic(0)
    ok: bool = False
    term: uint256[2] = empty(uint256[2])
    if ic0_scalar != 1:
        ok, acc = self._ec_mul(acc, ic0_scalar)
        assert ok, "verifying key: IC point 0 is not on the curve"
    for b: uint256 in range(N_ZERO_BLOCKS):
        first: uint256 = b * ZERO_BLOCK
        if first + ZERO_BLOCK <= params.N_PUBLIC:
            if keccak256(slice(msg.data, words_at + 32 * first, 32 * ZERO_BLOCK)) == ZERO_BLOCK_HASH:
                continue
        for j: uint256 in range(first, first + ZERO_BLOCK, bound=ZERO_BLOCK):
            if j == params.N_PUBLIC:
                break
            x: uint256 = inputs[j]
            if x == 0:
                continue
            # canonical: x and x + r would verify the same proof (aliasing); rejected, never reduced
            assert x < params.BN254_R, concat("public input ", uint2str(j), " >= r: not a canonical field element")
            term = self._get_ic(j + 1)
            if x != 1:
                ok, term = self._ec_mul(term, x)
                assert ok, concat("verifying key: IC point ", uint2str(j + 1), " is not on the curve")
            ok, acc = self._ec_add(acc, term)
            assert ok, concat("verifying key: IC point ", uint2str(j + 1), " is not on the curve")
    return acc


# --- batch verification --------------------------------------------------------------------------


@internal
@pure
def _check_coordinates(proof: uint256[8], i: uint256):
    for w: uint256 in range(8):
        # canonical field elements, as the precompiles require
        assert proof[w] < params.BN254_Q, concat("proof ", uint2str(i), ": a coordinate is not below q")
    # the identity would make e(A, B) trivially 1
    assert proof[0] | proof[1] != 0, concat("proof ", uint2str(i), ": A is the point at infinity")
    assert proof[2] | proof[3] | proof[4] | proof[5] != 0, concat("proof ", uint2str(i), ": B is the point at infinity")
    assert proof[6] | proof[7] != 0, concat("proof ", uint2str(i), ": C is the point at infinity")


@internal
@pure
def _get_weight(seed: bytes32, i: uint256) -> uint256:
    """rho_i: 1 for the first proof, else 128 bits of keccak256(seed, i), never 0."""
    if i == 0:
        return 1
    rho: uint256 = convert(keccak256(concat(seed, convert(i, bytes32))), uint256) >> WEIGHT_SHIFT
    if rho == 0:
        return 1  # a zero weight would leave proof i unchecked
    return rho


@internal
@view
def _find_bad_b(proofs: DynArray[uint256[8], MAX_BATCH]) -> String[140]:
    """Called when the pairing precompile failed: name the proof whose B is not in G2."""
    for i: uint256 in range(len(proofs), bound=MAX_BATCH):
        p: uint256[8] = proofs[i]
        if not self._is_g2([p[2], p[3], p[4], p[5]]):
            return concat("proof ", uint2str(i), ": B is not in G2 (off the twist or outside the subgroup)")
    return "pairing precompile failed on the batch"


@external
@view
def verify_batch(proofs: DynArray[uint256[8], MAX_BATCH], vk_xs: DynArray[uint256[2], MAX_BATCH]) -> bool:
    """
    @notice True iff every proofs[i] verifies against vk_xs[i] (from compute_vk_x), up to a
            2^-127 chance per attempt; one pairing check of len(proofs) + 3 pairs. The weights
            are drawn here, from every proof and vk_x.
    """
    k: uint256 = len(proofs)
    # an empty batch proves nothing: refuse rather than vacuously accept
    assert k > 0, "empty batch: nothing to verify"
    # one public-input point per proof
    assert len(vk_xs) == k, "one vk_x per proof"
    # Fiat-Shamir: the weights depend on every point of the equation
    seed: bytes32 = keccak256(abi_encode(proofs, vk_xs))
    rhos: DynArray[uint256, MAX_BATCH] = []
    sum_vk: uint256[2] = empty(uint256[2])
    ok: bool = False
    term: uint256[2] = empty(uint256[2])
    for i: uint256 in range(k, bound=MAX_BATCH):
        vk_x: uint256[2] = vk_xs[i]
        # canonical coordinates, as the precompiles require
        assert vk_x[0] < params.BN254_Q and vk_x[1] < params.BN254_Q, concat("vk_x ", uint2str(i), ": a coordinate is not below q")
        rho: uint256 = self._get_weight(seed, i)
        rhos.append(rho)
        ok, term = self._scale(vk_x, rho)
        assert ok, concat("vk_x ", uint2str(i), " is not on the curve")
        ok, sum_vk = self._ec_add(sum_vk, term)
    return self._check_weighted(proofs, rhos, sum_vk)


@external
@view
def verify_weighted(proofs: DynArray[uint256[8], MAX_BATCH], rhos: DynArray[uint256, MAX_BATCH], vk_sum: uint256[2]) -> bool:
    """
    @notice True iff prod_i X_i^rho_i == 1 (see the top of this file) for the caller's weights
            rhos and vk_sum = sum_i rho_i vk_x_i (compute_vk_x with combined inputs and
            ic0_scalar = sum_i rho_i). Sound only if the caller drew the weights after every proof
            and every public input was fixed (Fiat-Shamir over all of them, as BatchVerifier
            does): the contract cannot see the inputs behind vk_sum.
    """
    k: uint256 = len(proofs)
    # an empty batch proves nothing: refuse rather than vacuously accept
    assert k > 0, "empty batch: nothing to verify"
    # one weight per proof
    assert len(rhos) == k, "one weight per proof"
    for i: uint256 in range(k, bound=MAX_BATCH):
        # a zero weight would leave its proof unchecked; a weight >= r aliases a smaller one
        assert rhos[i] != 0 and rhos[i] < params.BN254_R, concat("weight ", uint2str(i), " is not in [1, r)")
    # canonical coordinates, as the precompiles require
    assert vk_sum[0] < params.BN254_Q and vk_sum[1] < params.BN254_Q, "vk_sum: a coordinate is not below q"
    return self._check_weighted(proofs, rhos, vk_sum)


@internal
@view
def _check_weighted(proofs: DynArray[uint256[8], MAX_BATCH], rhos: DynArray[uint256, MAX_BATCH], sum_vk: uint256[2]) -> bool:
    """The batch equation for weights rhos (one per proof) and sum_vk = sum_i rho_i vk_x_i:
    prod_i e(-rho_i A_i, B_i) * e(sum_vk, gamma) * e(sum_i rho_i C_i, delta)
    * e((sum_i rho_i) alpha, beta) == 1, in one pairing call."""
    k: uint256 = len(proofs)
    words: uint256[MAX_PAIRS * PAIR_WORDS] = empty(uint256[MAX_PAIRS * PAIR_WORDS])
    sum_rho: uint256 = 0
    sum_c: uint256[2] = empty(uint256[2])
    ok: bool = False
    term: uint256[2] = empty(uint256[2])
    for i: uint256 in range(k, bound=MAX_BATCH):
        proof: uint256[8] = proofs[i]
        self._check_coordinates(proof, i)
        rho: uint256 = rhos[i]
        sum_rho = uint256_addmod(sum_rho, rho, params.BN254_R)
        # pair i: (-rho_i A_i, B_i)
        ok, term = self._scale([proof[0], proof[1]], rho)
        assert ok, concat("proof ", uint2str(i), ": A is not on the curve")
        term = self._negate(term)
        base: uint256 = (i + 3) * PAIR_WORDS
        words[base] = term[0]
        words[base + 1] = term[1]
        words[base + 2] = proof[2]
        words[base + 3] = proof[3]
        words[base + 4] = proof[4]
        words[base + 5] = proof[5]
        ok, term = self._scale([proof[6], proof[7]], rho)
        assert ok, concat("proof ", uint2str(i), ": C is not on the curve")
        ok, sum_c = self._ec_add(sum_c, term)
    # (sum rho_i) alpha: alpha was checked at deployment, so these cannot fail
    alpha: uint256[2] = ALPHA1
    if sum_rho != 1:
        ok, alpha = self._ec_mul(alpha, sum_rho)
    # pairs 0-2: (sum rho_i vk_x_i, gamma), (sum rho_i C_i, delta), ((sum rho_i) alpha, beta)
    fixed: uint256[2][3] = [sum_vk, sum_c, alpha]
    g2s: uint256[4][3] = [GAMMA2, DELTA2, BETA2]
    for n: uint256 in range(3):
        words[n * PAIR_WORDS] = fixed[n][0]
        words[n * PAIR_WORDS + 1] = fixed[n][1]
        for w: uint256 in range(4):
            words[n * PAIR_WORDS + 2 + w] = g2s[n][w]
    n_pairs: uint256 = k + 3
    out: Bytes[32] = b""
    ok, out = raw_call(
        EC_PAIRING,
        slice(abi_encode(words), 0, n_pairs * PAIR_SIZE),
        max_outsize=32,
        gas=GAS_PAIRING_BASE + GAS_PAIRING_PER_PAIR * n_pairs,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok:
        raise self._find_bad_b(proofs)
    return extract32(out, 0, output_type=uint256) == 1
