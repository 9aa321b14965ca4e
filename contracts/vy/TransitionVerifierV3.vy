# pragma version 0.4.3
"""
@title Groth16 batch check of circuit v3's segment proofs (BN254), with inputs combined by the caller
@notice Holds the transition circuit's verifying key: alpha, beta, gamma, delta as immutables, the
        IC points (one per public input, plus one) in data contracts (64 bytes each after a
        leading STOP byte).

        `verify_combined(proofs, rhos, combined, sum_rho)` checks, in ONE pairing call of k + 3 pairs,
            prod_i e(-rho_i A_i, B_i) * e(vk_sum, gamma) * e(sum_i rho_i C_i, delta)
                * e(sum_rho alpha, beta) == 1
        with vk_sum = sum_rho IC_0 + sum_j combined_j IC_{j+1}: one multi-scalar multiplication
        for the whole settlement (every segment shares the key), where the caller passes
        combined_j = sum_i rho_i x_ij mod r and sum_rho = sum_i rho_i mod r. This is
        prod_i X_i^rho_i == 1 for the per-proof Groth16 equations X_i; it is sound only if the
        caller drew the weights after every proof and every public input was fixed (RollupV3 draws
        them from keccak256 of the batch number, the stored root, the settlement's data and the
        proofs, from which every input is a function).

        Why the weights are sound. Every X_i lies in GT, the group of r-th roots of unity in Fq12,
        of prime order r, so X_j != 1 has order r. The X_i are fixed before the weights are known;
        if some X_j != 1 with j >= 1, then for any values of the other weights at most one residue
        of rho_j mod r satisfies the equation, so one hash evaluation passes with probability
        <= 2^-127 with 128-bit weights (a zero weight, which would leave its proof unchecked, is
        refused); a prover grinding 2^t batch variants succeeds with <= 2^(t-127). If only
        X_0 != 1 the product is X_0 and the batch fails whatever the weights, which is why
        rho_0 can be 1. Bilinearity in the G1 argument needs B_i in G2, which the pairing
        precompile enforces (EIP-197); G1 has cofactor 1 on BN254.

        Layouts (EIP-197): G1 = (x, y); G2 = (x_imag, x_real, y_imag, y_real); a proof is
        (A.x, A.y, B.x_imag, B.x_real, B.y_imag, B.y_real, C.x, C.y). Malformed input (a count, a
        combined input or weight not below r, a coordinate >= q, a point off its curve or B
        outside G2) reverts with a reason; a well-formed batch that fails returns False.
"""

import v3params

EC_ADD: constant(address) = 0x0000000000000000000000000000000000000006
EC_MUL: constant(address) = 0x0000000000000000000000000000000000000007
EC_PAIRING: constant(address) = 0x0000000000000000000000000000000000000008
# EIP-1108 prices: each call gets exactly its price (a failed precompile burns all it was given)
GAS_EC_ADD: constant(uint256) = 150
GAS_EC_MUL: constant(uint256) = 6000
GAS_PAIRING_BASE: constant(uint256) = 45000
GAS_PAIRING_PER_PAIR: constant(uint256) = 34000

MAX_BATCH: constant(uint256) = v3params.MAX_SEGMENTS
MAX_CHUNKS: constant(uint256) = 16
CHUNK_BYTES: constant(uint256) = v3params.IC_PER_CHUNK * 64
LAST_CHUNK_BYTES: constant(uint256) = v3params.IC_LAST_CHUNK_POINTS * 64
MAX_PAIRS: constant(uint256) = MAX_BATCH + 3
PAIR_WORDS: constant(uint256) = 6
PAIR_SIZE: constant(uint256) = 192
G1_SIZE: constant(uint256) = 64

ALPHA1: public(immutable(uint256[2]))
BETA2: public(immutable(uint256[4]))
GAMMA2: public(immutable(uint256[4]))
DELTA2: public(immutable(uint256[4]))
IC_CHUNKS: public(immutable(DynArray[address, MAX_CHUNKS]))


@deploy
def __init__(alpha1: uint256[2], beta2: uint256[4], gamma2: uint256[4], delta2: uint256[4], ic_chunks: DynArray[address, MAX_CHUNKS]):
    # one IC point per public input of the transition circuit, plus the constant one, in the
    # chunks contracts.groth16.encode_verifying_key makes (full ones, then the rest): the MSM reads
    # each chunk whole, with a length fixed at compile time
    assert len(ic_chunks) == v3params.IC_CHUNKS, "verifying key: IC must hold N_PUBLIC + 1 points for this circuit shape"
    for i: uint256 in range(len(ic_chunks), bound=MAX_CHUNKS):
        points: uint256 = self._count_chunk_points(ic_chunks[i])
        expected: uint256 = v3params.IC_PER_CHUNK
        if i == v3params.IC_CHUNKS - 1:
            expected = v3params.IC_LAST_CHUNK_POINTS
        assert points == expected, "verifying key: IC must hold N_PUBLIC + 1 points for this circuit shape"
    ok: bool = False
    point: uint256[2] = empty(uint256[2])
    ok, point = self._ec_add(alpha1, empty(uint256[2]))
    # alpha is a G1 point (ecAdd fails otherwise)
    assert ok, "verifying key: alpha is not on the curve"
    ALPHA1 = alpha1
    BETA2 = beta2
    GAMMA2 = gamma2
    DELTA2 = delta2
    IC_CHUNKS = ic_chunks
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
    ok, out = raw_call(EC_ADD, abi_encode(p, q), max_outsize=64, gas=GAS_EC_ADD, is_static_call=True, revert_on_failure=False)
    if not ok:
        return False, empty(uint256[2])
    return True, [extract32(out, 0, output_type=uint256), extract32(out, 32, output_type=uint256)]


@internal
@view
def _ec_mul(p: uint256[2], s: uint256) -> (bool, uint256[2]):
    """s * p, or (False, 0) when p is not on the curve."""
    ok: bool = False
    out: Bytes[64] = b""
    ok, out = raw_call(EC_MUL, abi_encode(p, s), max_outsize=64, gas=GAS_EC_MUL, is_static_call=True, revert_on_failure=False)
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
        EC_PAIRING, abi_encode(empty(uint256[2]), q), max_outsize=32, gas=GAS_PAIRING_BASE + GAS_PAIRING_PER_PAIR,
        is_static_call=True, revert_on_failure=False,
    )
    return ok


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
def _compute_vk_sum(combined: uint256[v3params.N_PUBLIC], sum_rho: uint256) -> uint256[2]:
    """sum_rho IC_0 + sum_j combined_j IC_{j+1}: zero columns cost nothing. Each chunk of IC points
    is read whole (one EXTCODECOPY); per term one ecMul and one ecAdd, the precompiles' outputs
    passed on as bytes (the ecAdd of each term also checks it is on the curve)."""
    ok: bool = False
    acc: Bytes[64] = concat(empty(bytes32), empty(bytes32))  # the identity
    term: Bytes[64] = b""
    points: Bytes[CHUNK_BYTES] = b""
    for c: uint256 in range(v3params.IC_CHUNKS):
        # the last chunk holds the rest
        if c == v3params.IC_CHUNKS - 1:
            points = slice(IC_CHUNKS[c].code, 1, LAST_CHUNK_BYTES)
        else:
            points = slice(IC_CHUNKS[c].code, 1, CHUNK_BYTES)
        for p: uint256 in range(v3params.IC_PER_CHUNK):
            j: uint256 = c * v3params.IC_PER_CHUNK + p  # IC point j scales input j - 1 (0: the constant)
            if j > v3params.N_PUBLIC:
                break
            x: uint256 = sum_rho
            if j > 0:
                x = combined[j - 1]
                if x == 0:
                    continue
                # canonical: x and x + r are one scalar; the caller reduced, so this is never hit honestly
                assert x < v3params.BN254_R, concat("combined input ", uint2str(j - 1), " >= r")
            point: Bytes[64] = slice(points, p * G1_SIZE, G1_SIZE)
            if x == 1:
                term = point  # the ecAdd below checks it is on the curve
            else:
                ok, term = raw_call(EC_MUL, concat(point, convert(x, bytes32)), max_outsize=64, gas=GAS_EC_MUL, is_static_call=True, revert_on_failure=False)
                assert ok, concat("verifying key: IC point ", uint2str(j), " is not on the curve")
            ok, acc = raw_call(EC_ADD, concat(acc, term), max_outsize=64, gas=GAS_EC_ADD, is_static_call=True, revert_on_failure=False)
            assert ok, concat("verifying key: IC point ", uint2str(j), " is not on the curve")
    return [extract32(acc, 0, output_type=uint256), extract32(acc, 32, output_type=uint256)]


# --- the batch check -----------------------------------------------------------------------------


@internal
@pure
def _check_coordinates(proof: uint256[8], i: uint256):
    for w: uint256 in range(8):
        # canonical field elements, as the precompiles require
        assert proof[w] < v3params.BN254_Q, concat("proof ", uint2str(i), ": a coordinate is not below q")
    # the identity would make e(A, B) trivially 1
    assert proof[0] | proof[1] != 0, concat("proof ", uint2str(i), ": A is the point at infinity")
    assert proof[2] | proof[3] | proof[4] | proof[5] != 0, concat("proof ", uint2str(i), ": B is the point at infinity")
    assert proof[6] | proof[7] != 0, concat("proof ", uint2str(i), ": C is the point at infinity")


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
def verify_combined(
    proofs: DynArray[uint256[8], MAX_BATCH],
    rhos: DynArray[uint256, MAX_BATCH],
    combined: uint256[v3params.N_PUBLIC],
    sum_rho: uint256,
) -> bool:
    """
    @notice True iff the weighted batch equation holds (see the top of this file). Sound only
            for weights drawn after every proof and public input was fixed.
    """
    k: uint256 = len(proofs)
    # an empty batch proves nothing: refuse rather than vacuously accept
    assert k > 0, "empty batch: nothing to verify"
    # one weight per proof
    assert len(rhos) == k, "one weight per proof"
    # a canonical scalar
    assert sum_rho < v3params.BN254_R, "the weights' sum is not below r"
    words: uint256[MAX_PAIRS * PAIR_WORDS] = empty(uint256[MAX_PAIRS * PAIR_WORDS])
    sum_c: uint256[2] = empty(uint256[2])
    ok: bool = False
    term: uint256[2] = empty(uint256[2])
    for i: uint256 in range(k, bound=MAX_BATCH):
        proof: uint256[8] = proofs[i]
        rho: uint256 = rhos[i]
        # a zero weight would leave its proof unchecked; a weight >= r aliases a smaller one
        assert rho != 0 and rho < v3params.BN254_R, concat("weight ", uint2str(i), " is not in [1, r)")
        self._check_coordinates(proof, i)
        # pair i + 3: (-rho_i A_i, B_i)
        ok, term = self._scale([proof[0], proof[1]], rho)
        assert ok, concat("proof ", uint2str(i), ": A is not on the curve")
        base: uint256 = (i + 3) * PAIR_WORDS
        words[base] = term[0]
        words[base + 1] = (v3params.BN254_Q - term[1]) % v3params.BN254_Q
        words[base + 2] = proof[2]
        words[base + 3] = proof[3]
        words[base + 4] = proof[4]
        words[base + 5] = proof[5]
        ok, term = self._scale([proof[6], proof[7]], rho)
        assert ok, concat("proof ", uint2str(i), ": C is not on the curve")
        ok, sum_c = self._ec_add(sum_c, term)
    vk_sum: uint256[2] = self._compute_vk_sum(combined, sum_rho)
    # (sum rho_i) alpha: alpha was checked at deployment, so this cannot fail
    alpha: uint256[2] = ALPHA1
    ok, alpha = self._scale(alpha, sum_rho)
    # pairs 0-2: (vk_sum, gamma), (sum rho_i C_i, delta), ((sum rho_i) alpha, beta)
    fixed: uint256[2][3] = [vk_sum, sum_c, alpha]
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
