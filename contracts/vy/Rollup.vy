# pragma version ~=0.4.3
"""
@title Settlement contract of the ZK derivatives rollup
@notice Holds the funds, the state root, the batch number, the L1 deposit queue, the withdrawal
        claims and the escape hatch. A batch is settled only through `settle`, which only the
        `BatchVerifier` may call once it has checked the batch's proofs, windows and signatures;
        `settle` itself checks the batch's first leaf values against the stored root and rebuilds
        the new root from their last values, with one multiproof.
"""

import params
import merkle
import eip712

# --- keys and bounds (verifier/encoding.py) ----------------------------------------------------
KIND_SHIFT: constant(uint256) = 29
LEAF_ACCOUNT: constant(uint256) = 1
MAX_SLOTS: constant(uint256) = 16 * params.N_SLOTS
MAX_KEYS: constant(uint256) = merkle.MAX_KEYS
MAX_SIBLINGS: constant(uint256) = merkle.MAX_SIBLINGS
MAX_BITMAP: constant(uint256) = merkle.MAX_BITMAP
ACCOUNT_LEAF_WORDS: constant(uint256) = 5 + 4 * params.MAX_POSITIONS

UNIT_WEI: constant(uint256) = 10**6  # one collateral unit (1e-6 USD) is 1e6 wei of the L1 coin


struct Withdrawal:
    account: uint256
    recipient: address
    amount: uint256


struct ForcedWithdrawal:
    account: uint256
    recipient: address
    amount: uint256
    nonce: uint256  # of the L2 Withdraw the owner signed with the request
    deadline_batch: uint256  # must be served by this batch number
    deadline_time: uint256  # or by this time, if batches stop


event Deposited:
    deposit_id: indexed(uint256)
    account: indexed(uint256)
    sender: address
    amount: uint256
    queue_hash: bytes32


event BatchSettled:
    number: indexed(uint256)
    new_root: bytes32
    transactions: uint256
    deposits_consumed: uint256
    withdrawals_root: bytes32


event WithdrawalClaimed:
    batch: indexed(uint256)
    index: uint256
    recipient: indexed(address)
    amount: uint256


event ForcedWithdrawalRequested:
    request_id: indexed(uint256)
    account: indexed(uint256)
    recipient: address
    amount: uint256
    nonce: uint256
    signature: uint256[3]  # v, r, s of the L2 Withdraw: the sequencer submits it as is
    deadline_batch: uint256


event ForcedWithdrawalDismissed:
    request_id: indexed(uint256)
    reason: String[64]


event Frozen:
    request_id: uint256


event Exited:
    account: indexed(uint256)
    recipient: address
    amount: uint256


state_root: public(bytes32)
batch_number: public(uint256)
batch_verifier: public(address)
deployer: address

deposit_count: public(uint256)  # L1 queue length
deposit_hashes: public(HashMap[uint256, bytes32])  # rolling hash after n deposits
deposit_times: public(HashMap[uint256, uint256])  # when deposit n was queued
deposit_reclaimed: public(HashMap[uint256, bool])
deposits_consumed: public(uint256)
account_owner: public(HashMap[uint256, address])  # who opened the account (its L1 owner)
next_account_id: public(uint256)  # the id `open_account` assigns next

withdrawal_roots: public(HashMap[uint256, bytes32])  # batch -> root of its withdrawals
withdrawal_counts: public(HashMap[uint256, uint256])
claimed: public(HashMap[bytes32, bool])

forced: public(HashMap[uint256, ForcedWithdrawal])
forced_count: public(uint256)
forced_served: public(uint256)
forced_delay_batches: public(uint256)
forced_delay_seconds: public(uint256)
# the EIP-712 domain of the L2 Withdraw a forced request carries: this L1 and this contract
DOMAIN_SEPARATOR: public(immutable(bytes32))
frozen: public(bool)
exited: public(HashMap[uint256, bool])


@deploy
def __init__(genesis_root: bytes32, forced_delay_batches: uint256, forced_delay_seconds: uint256):
    # a sequencer needs at least one batch (its proving pipeline) to include a request
    assert forced_delay_batches >= 1 and forced_delay_seconds >= 1, "forced-withdrawal delays must be positive"
    self.state_root = genesis_root
    DOMAIN_SEPARATOR = eip712.compute_domain_separator(chain.id, self)
    self.deployer = msg.sender
    self.forced_delay_batches = forced_delay_batches
    self.forced_delay_seconds = forced_delay_seconds


@external
def set_batch_verifier(batch_verifier: address):
    """Bind the batch verifier, once, at deployment (it needs this contract's address first)."""
    assert msg.sender == self.deployer and self.batch_verifier == empty(address), "the batch verifier is set once, by the deployer"
    self.batch_verifier = batch_verifier


# --- L1 deposits ---------------------------------------------------------------------------------

@external
@payable
def open_account(amount: uint256) -> uint256:
    """Open an L2 account owned by msg.sender with a first deposit of `amount` units; returns its
    id. The contract assigns ids in order: nobody chooses one, so nobody can squat an id another
    user meant to take (front-running its first deposit did, when depositors chose ids)."""
    account: uint256 = self.next_account_id
    # an account id of the state tree
    assert account < 1 << KIND_SHIFT, "no account id left"
    self.next_account_id = account + 1
    self.account_owner[account] = msg.sender
    self._queue(account, amount, msg.value)
    return account


@external
@payable
def deposit(account: uint256, amount: uint256):
    """Queue a deposit of `amount` collateral units (msg.value = amount * UNIT_WEI) to an open
    account of msg.sender's. The queue entry authorises the L2 deposit (no L2 signature), and the
    L2 binds accounts as this contract does, so it never meets a queued deposit it must reject
    (which would block the queue)."""
    # only the owner tops an account up (the L2 would refuse another address: the queue would block)
    assert self.account_owner[account] == msg.sender, "not an account of the sender's: open one with open_account"
    self._queue(account, amount, msg.value)


@internal
def _queue(account: uint256, amount: uint256, paid: uint256):
    """Append a deposit from msg.sender to the L1 queue (its rolling hash and its time)."""
    assert not self.frozen, "the rollup is frozen"
    # positive, within the wire bound
    assert amount > 0 and amount < 1 << 64, "amount must be in (0, 2**64)"
    assert paid == amount * UNIT_WEI, "msg.value must be amount * UNIT_WEI"
    n: uint256 = self.deposit_count
    queue_hash: bytes32 = keccak256(abi_encode(self.deposit_hashes[n], account, msg.sender, amount))
    self.deposit_hashes[n + 1] = queue_hash
    self.deposit_times[n] = block.timestamp
    self.deposit_count = n + 1
    log Deposited(deposit_id=n, account=account, sender=msg.sender, amount=amount, queue_hash=queue_hash)


# --- settlement ----------------------------------------------------------------------------------

@internal
def _serve_forced(account: uint256, recipient: address, amount: uint256):
    """A settled withdrawal serves the oldest pending forced request if it is that withdrawal."""
    n: uint256 = self.forced_served
    if n < self.forced_count:
        request: ForcedWithdrawal = self.forced[n]
        if request.account == account and request.recipient == recipient and request.amount == amount:
            self.forced_served = n + 1


@external
def settle(
    new_root: bytes32,
    transactions: uint256,
    keys: DynArray[uint256, MAX_KEYS],
    before: DynArray[bytes32, MAX_KEYS],
    after: DynArray[bytes32, MAX_KEYS],
    siblings: DynArray[bytes32, MAX_SIBLINGS],
    bitmap: DynArray[bytes32, MAX_BITMAP],
    deposits_end: uint256,
    queue_hash: bytes32,
    withdrawals: DynArray[Withdrawal, MAX_SLOTS],
):
    """Settle the next batch, checked by the batch verifier: its first leaf values prove against
    the stored root, its last ones give `new_root`; its deposits are the queue's next ones."""
    # only the batch verifier, which checked the proofs, windows and signatures
    assert msg.sender == self.batch_verifier, "only the batch verifier settles"
    assert not self.frozen, "the rollup is frozen"
    # the batch's deposits are the L1 queue's next ones, in order
    assert deposits_end <= self.deposit_count and queue_hash == self.deposit_hashes[deposits_end], "deposits do not match the L1 queue"
    # the first and last value of every key, against the old and the new root
    assert merkle.compute_multiproof_root(keys, before, siblings, bitmap) == self.state_root, "before leaves are not in the stored root"
    assert merkle.compute_multiproof_root(keys, after, siblings, bitmap) == new_root, "new root is not the one the diffs rebuild"
    number: uint256 = self.batch_number + 1
    leaves: DynArray[bytes32, MAX_SLOTS] = []
    for i: uint256 in range(len(withdrawals), bound=MAX_SLOTS):
        w: Withdrawal = withdrawals[i]
        leaves.append(keccak256(abi_encode(number, i, w.recipient, w.amount)))
        self._serve_forced(w.account, w.recipient, w.amount)
    withdrawals_root: bytes32 = merkle.compute_list_root(leaves)
    self.state_root = new_root
    self.batch_number = number
    self.deposits_consumed = deposits_end
    self.withdrawal_roots[number] = withdrawals_root
    self.withdrawal_counts[number] = len(withdrawals)
    log BatchSettled(number=number, new_root=new_root, transactions=transactions, deposits_consumed=deposits_end, withdrawals_root=withdrawals_root)


@internal
@pure
def _hash_words(words: DynArray[uint256, ACCOUNT_LEAF_WORDS]) -> bytes32:
    return keccak256(slice(abi_encode(words), 64, 32 * len(words)))


# --- withdrawals ---------------------------------------------------------------------------------

@external
def claim_withdrawal(batch: uint256, index: uint256, recipient: address, amount: uint256, proof: DynArray[bytes32, 16]):
    """Pay a settled withdrawal once, with its proof against the batch's withdrawals root."""
    leaf: bytes32 = keccak256(abi_encode(batch, index, recipient, amount))
    # a withdrawal of a settled batch
    assert batch >= 1 and batch <= self.batch_number, "no such settled batch"
    # a proof of the list's depth: a shorter one would pass an inner node off as a leaf
    assert len(proof) == merkle.compute_list_depth(self.withdrawal_counts[batch]), "withdrawal proof has the wrong length"
    assert merkle.compute_list_root_from_proof(leaf, index, proof) == self.withdrawal_roots[batch], "withdrawal proof does not match the batch"
    # once
    assert not self.claimed[leaf], "withdrawal already claimed"
    self.claimed[leaf] = True
    log WithdrawalClaimed(batch=batch, index=index, recipient=recipient, amount=amount)
    raw_call(recipient, b"", value=amount * UNIT_WEI)


# --- escape hatch --------------------------------------------------------------------------------

@external
def request_forced_withdrawal(account: uint256, amount: uint256, nonce: uint256, signature: uint256[3]):
    """Ask, from L1, for an L2 withdrawal the sequencer cannot censor. The request carries the L2
    `Withdraw` (account, amount, nonce) signed by the account's key, checked here, so the sequencer
    always has the transaction to include. Within `forced_delay_batches` batches or
    `forced_delay_seconds`, the sequencer must settle a batch holding that withdrawal, or dismiss
    the request with a proof that it is invalid at the settled root (`dismiss_forced_withdrawal`);
    otherwise anyone may freeze the rollup. Binding only for accounts without open positions
    (whose withdrawals need a margin check the contract cannot do)."""
    assert not self.frozen, "the rollup is frozen"
    assert self.account_owner[account] == msg.sender, "only the account's owner may force a withdrawal"
    assert amount > 0 and amount < 1 << 64, "amount must be in (0, 2**64)"
    assert nonce < 1 << 32, "nonce out of range"
    words: uint256[11] = empty(uint256[11])
    words[0] = account
    words[3] = amount
    words[6] = nonce
    digest: bytes32 = eip712.compute_tx_digest(1, words, DOMAIN_SEPARATOR)  # kind 1: withdraw
    # the L2 transaction the sequencer will include is the owner's
    assert eip712.recover(digest, signature[0], signature[1], signature[2]) == msg.sender, "the L2 withdrawal is not signed by the account's owner"
    n: uint256 = self.forced_count
    deadline: uint256 = self.batch_number + self.forced_delay_batches
    self.forced[n] = ForcedWithdrawal(
        account=account, recipient=msg.sender, amount=amount, nonce=nonce,
        deadline_batch=deadline, deadline_time=block.timestamp + self.forced_delay_seconds,
    )
    self.forced_count = n + 1
    log ForcedWithdrawalRequested(
        request_id=n, account=account, recipient=msg.sender, amount=amount, nonce=nonce, signature=signature, deadline_batch=deadline
    )


@external
def dismiss_forced_withdrawal(
    leaf_words: DynArray[uint256, ACCOUNT_LEAF_WORDS],
    siblings: DynArray[bytes32, 32],
    bitmap: DynArray[bytes32, 1],
):
    """Dismiss the oldest pending forced withdrawal with its account's leaf at the settled root
    (empty for an account not yet created), which shows the L2 would reject it: no account, open
    positions, another nonce, or less collateral than the amount."""
    n: uint256 = self.forced_served
    assert n < self.forced_count, "no forced withdrawal is pending"
    request: ForcedWithdrawal = self.forced[n]
    leaf: bytes32 = empty(bytes32)
    reason: String[64] = "the account does not exist"
    if len(leaf_words) > 0:
        # a canonical account leaf: kind, address, collateral, nonce, n, then n positions
        assert len(leaf_words) >= 5 and leaf_words[0] == LEAF_ACCOUNT and len(leaf_words) == 5 + 4 * leaf_words[4], "not an account leaf"
        leaf = self._hash_words(leaf_words)
        if leaf_words[4] != 0:
            reason = "the account has open positions"
        elif leaf_words[3] != request.nonce:
            reason = "the withdrawal's nonce is not the account's"
        elif leaf_words[2] < request.amount:
            reason = "the account's collateral is below the amount"
        else:
            reason = ""
    assert merkle.compute_multiproof_root([request.account], [leaf], siblings, bitmap) == self.state_root, "account leaf is not in the last settled root"
    # the withdrawal is valid: only settling it serves the request
    assert reason != "", "the forced withdrawal is valid: settle it"
    self.forced_served = n + 1
    log ForcedWithdrawalDismissed(request_id=n, reason=reason)


@external
def freeze():
    """Freeze the rollup if the oldest pending forced withdrawal is overdue, or if the oldest
    queued deposit has waited longer than `forced_delay_seconds` (deposits cannot be censored)."""
    n: uint256 = self.forced_served
    overdue_withdrawal: bool = False
    if n < self.forced_count:
        request: ForcedWithdrawal = self.forced[n]
        overdue_withdrawal = self.batch_number >= request.deadline_batch or block.timestamp >= request.deadline_time
    d: uint256 = self.deposits_consumed
    overdue_deposit: bool = d < self.deposit_count and block.timestamp >= self.deposit_times[d] + self.forced_delay_seconds
    assert n < self.forced_count or d < self.deposit_count, "no forced withdrawal is pending"
    assert overdue_withdrawal or overdue_deposit, "the forced withdrawal is not overdue"
    self.frozen = True
    log Frozen(request_id=n)


@external
def reclaim_deposit(deposit_id: uint256, account: uint256, sender: address, amount: uint256):
    """After a freeze: refund a queued deposit the L2 never consumed, once, to its sender."""
    assert self.frozen, "deposits are reclaimed only once the rollup is frozen"
    assert deposit_id >= self.deposits_consumed and deposit_id < self.deposit_count, "no such deposit left in the queue"
    assert not self.deposit_reclaimed[deposit_id], "deposit already reclaimed"
    # the queue entry, as deposited
    assert keccak256(abi_encode(self.deposit_hashes[deposit_id], account, sender, amount)) == self.deposit_hashes[deposit_id + 1], "not the queued deposit"
    self.deposit_reclaimed[deposit_id] = True
    raw_call(sender, b"", value=amount * UNIT_WEI)


@external
def exit(
    account: uint256,
    leaf_words: DynArray[uint256, ACCOUNT_LEAF_WORDS],
    siblings: DynArray[bytes32, 32],
    bitmap: DynArray[bytes32, 1],
):
    """After a freeze: pay an account's collateral against the last settled root, once. The leaf
    is the account's canonical leaf words; open positions are not valued (no trusted price after
    a freeze), only collateral is paid."""
    assert self.frozen, "exits open only once the rollup is frozen"
    assert not self.exited[account], "account already exited"
    assert len(leaf_words) >= 5 and leaf_words[0] == LEAF_ACCOUNT, "not an account leaf"
    leaf: bytes32 = self._hash_words(leaf_words)
    assert merkle.compute_multiproof_root([account], [leaf], siblings, bitmap) == self.state_root, "account leaf is not in the last settled root"
    self.exited[account] = True
    recipient: address = convert(leaf_words[1], address)
    log Exited(account=account, recipient=recipient, amount=leaf_words[2])
    raw_call(recipient, b"", value=leaf_words[2] * UNIT_WEI)
