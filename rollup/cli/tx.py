"""`rollup tx <type>`: build one user transaction, sign it (or print the EIP-712 typed data a wallet signs), and append it to a file or submit it.

The types are the user-signed ones of verifier/wire.py: transfer, withdraw, perp-trade,
option-trade, liquidate, settle-expired (deposits come from the L1 queue: `rollup l1 deposits`).
The signing domain (L1 chain id, Rollup contract) comes from the node's genesis (`--home`), or
from `--genesis FILE` to sign offline; nonces from the node's state, else `--nonce`.

A trade has two signers who sign the same message: the first writes the line with their signature
(`--out FILE`), the second adds theirs with `rollup tx sign FILE --line N`. Every signature is
checked before it is written: a withdrawal's must recover to the party's registered address; the
other types are signed with the party's L2 key (derived from the wallet key the CLI is given, the
one the account registered: `rollup key register`), which must be the account's registered key.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import TypeAdapter, ValidationError

from rollup.cli.common import UserError, console, print_json
from rollup.cli.keys import (
    DevKeyOption,
    GenesisOption,
    InteractiveOption,
    KeySource,
    KeystoreDirOption,
    KeystoreOption,
    NonceOption,
    OutOption,
    PasswordFileOption,
    SignatureOption,
    SubmitOption,
    TypedDataOption,
    load_private_key,
)
from rollup.cli.node import HomeOption, JsonOption
from rollup.node import resolve_home
from rollup.signing import PLACEHOLDER_L2_SIGNATURE, PLACEHOLDER_SIGNATURE, L2Key, derive_l2_key, get_address, sign_digest, unsigned
from verifier.l2auth import compute_l2_message, sign_l2, verify_l2_signature
from rollup.units import USD, USD_DECIMALS
from verifier.encoding import (
    InvalidSignature,
    MalformedLeaf,
    account_key,
    compute_signing_digest,
    decode_account_leaf,
    get_typed_data,
    is_l2_signed,
    recover_address,
)
from verifier.wire import (
    Genesis,
    L2Signature,
    Liquidate,
    OptionTrade,
    PerpTrade,
    RegisterKey,
    SettleExpired,
    Signature,
    Transfer,
    WireModel,
    Withdraw,
)

SIGNATURE_ADAPTER: TypeAdapter = TypeAdapter(Signature)  # the wire's own check: 65 bytes of 0x-hex
L2_SIGNATURE_ADAPTER: TypeAdapter = TypeAdapter(L2Signature)  # 160 bytes of 0x-hex
MAX_KEY_INDEX = 16  # key indexes searched for the one an account registered (rotations)

app = typer.Typer(
    help="Build, sign and send one transaction: transfer, withdraw, perp-trade, option-trade, liquidate, settle-expired; "
    "`tx sign` adds a trade's second signature.",
    no_args_is_help=True,
)


# --- what the CLI needs to know of each type -----------------------------------------------------


@dataclass(frozen=True)
class Party:
    """One signer of a transaction: the account field, its nonce field and its signature field
    (in the model's signature order, that of `verifier.slots.get_signing_accounts`)."""

    side: str
    account_field: str
    nonce_field: str
    signature_field: str


@dataclass(frozen=True)
class TxKind:
    model: type[WireModel]
    parties: tuple[Party, ...]
    accounts: tuple[str, ...]  # every field naming an account (they must exist)
    instrument: tuple[str, str | None] | None = None  # (field, required kind) of the instrument named


def _single(side: str, account_field: str | None = None) -> tuple[Party, ...]:
    return (Party(side, account_field or side, "nonce", "signature"),)


def _pair(first: str, second: str) -> tuple[Party, ...]:
    return tuple(Party(s, s, f"{s}_nonce", f"{s}_signature") for s in (first, second))


KINDS: dict[str, TxKind] = {
    "transfer": TxKind(Transfer, _single("sender"), ("sender", "recipient")),
    "withdraw": TxKind(Withdraw, _single("owner", "account"), ("account",)),
    "perp_trade": TxKind(PerpTrade, _pair("maker", "taker"), ("maker", "taker"), ("market", "perp")),
    "option_trade": TxKind(OptionTrade, _pair("buyer", "seller"), ("buyer", "seller"), ("series", "option")),
    "liquidate": TxKind(Liquidate, _single("liquidator"), ("liquidator", "account"), ("instrument", None)),
    "settle_expired": TxKind(SettleExpired, _single("sender"), ("sender", "account"), ("series", "option")),
    "register_key": TxKind(RegisterKey, _single("owner", "account"), ("account",)),  # `rollup key register`
}
KIND_OF_MODEL = {kind.model: kind for kind in KINDS.values()}
# wire field -> the option that sets it, to name the option in an error
OPTION_OF_FIELD = {"sender": "--from", "recipient": "--to"}


def get_kind(tx: WireModel) -> TxKind:
    kind = KIND_OF_MODEL.get(type(tx))
    # only user-signed types: deposits come from the L1 queue, oracle updates from the oracle
    if kind is None:
        raise UserError(f"{tx.type} transactions are not signed by users (the CLI signs {', '.join(KINDS)})", code="unsupported_type")
    return kind


# --- inputs --------------------------------------------------------------------------------------


def parse_money(text: str, option: str) -> int:
    """micro-USD from an integer (micro-USD, as everywhere in the rollup) or a decimal with the
    suffix USD ("12.5USD" is 12_500_000), exactly; UserError otherwise."""
    body = text.strip().replace("_", "")
    in_usd = body.upper().endswith("USD")
    number = body[:-3].strip() if in_usd else body
    try:
        value = Decimal(number)
    except InvalidOperation:
        value = None
    # a finite number, a whole count of micro-USD
    if value is None or not value.is_finite():
        raise UserError(f"{option}: {text!r} is not an amount (micro-USD as an integer, or USD as e.g. 12.5USD)", code="invalid_amount")
    micro = value * USD if in_usd else value
    if micro != micro.to_integral_value():
        raise UserError(
            f"{option}: {text!r} is not a whole number of micro-USD (at most {USD_DECIMALS} decimals in USD)", code="invalid_amount"
        )
    return int(micro)


@dataclass
class Chain:
    """What signing needs from the node: the genesis (the signing domain) and, with a node, its
    accounts (registered addresses and nonces)."""

    genesis: Genesis
    store: Any | None  # rollup.storage.Store, None offline
    home: Path | None

    def get_account(self, account: int) -> Any | None:
        """The account's leaf (address, nonce, ...), or None if no deposit created it (offline: None)."""
        if self.store is None:
            return None
        leaf = self.store.get_leaf(account_key(account))
        if not leaf:
            return None
        try:
            return decode_account_leaf(leaf)
        except MalformedLeaf as exc:
            raise UserError(f"account {account}: the node's leaf is unreadable: {exc}", code="node_corrupt") from None


@contextmanager
def open_chain(home: Path | None, genesis_file: Path | None) -> Iterator[Chain]:
    """The node in HOME, or, with --genesis, offline signing with that genesis and no state."""
    from rollup.storage import StorageError, Store

    if genesis_file is not None:
        try:
            genesis = Genesis.model_validate_json(genesis_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read --genesis {genesis_file}: {exc.strerror}", code="file_not_found") from None
        except ValidationError as exc:
            raise UserError(f"--genesis {genesis_file} is not a genesis: {exc.errors()[0]['msg']}", code="invalid_genesis") from None
        yield Chain(genesis, None, None)
        return
    target = resolve_home(home)
    try:
        store = Store.open(target)
    except StorageError as exc:
        raise UserError(f"{exc}; to sign without a node, pass --genesis FILE and the nonces", code="no_node") from None
    try:
        yield Chain(Genesis.model_validate_json(store.get_meta("genesis") or ""), store, target)
    finally:
        store.close()


def get_next_nonce(chain: Chain, account: int, out: Path | None) -> int:
    """The account's next nonce: its nonce in the node's state, or one past the highest it signed
    in the --out file (transactions written but not yet submitted)."""
    from rollup.txfile import TRANSACTION_ADAPTER
    from verifier.slots import get_signing_accounts

    nonce = chain.get_account(account).nonce  # it exists: check_references
    if out is not None and out.is_file():
        for line in out.read_text(encoding="utf-8").splitlines():
            try:
                tx = TRANSACTION_ADAPTER.validate_json(line)
            except ValidationError:
                continue  # `rollup submit` will name it; it signs no nonce
            nonce = max([nonce] + [n + 1 for a, n in get_signing_accounts(tx) if a == account])
    return nonce


def build_transaction(kind: TxKind, fields: dict[str, Any], nonces: dict[str, int | None], chain: Chain, out: Path | None) -> WireModel:
    """The validated transaction with placeholder signatures; nonces not given come from the node."""
    missing = [p for p in kind.parties if nonces.get(p.side) is None]
    # offline there is no state to read a nonce from
    if missing and chain.store is None:
        options = " and ".join(nonce_option(kind, p) for p in missing)
        raise UserError(f"pass {options}: with --genesis there is no node state to read nonces from", code="missing_nonce")
    try:
        # nonces not given are placeholders until the accounts are known to exist
        tx = unsigned(kind.model, **fields, **{p.nonce_field: nonces.get(p.side) or 0 for p in kind.parties})
    except ValidationError as exc:
        raise UserError("; ".join(describe_field_error(kind, e) for e in exc.errors()), code="invalid_transaction") from None
    check_references(kind, tx, chain)
    return tx.model_copy(update={p.nonce_field: get_next_nonce(chain, getattr(tx, p.account_field), out) for p in missing})


def nonce_option(kind: TxKind, party: Party) -> str:
    return "--nonce" if len(kind.parties) == 1 else f"--{party.side}-nonce"


def describe_field_error(kind: TxKind, error: dict) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    nonce_of = {p.nonce_field: nonce_option(kind, p) for p in kind.parties}
    option = nonce_of.get(field) or OPTION_OF_FIELD.get(field) or "--" + field.replace("_", "-")
    return f"{option}: {error['msg'].lower()} (got {error.get('input')!r})"


def check_references(kind: TxKind, tx: WireModel, chain: Chain) -> None:
    """The accounts exist (with a node) and the instrument is the genesis' and of the right kind."""
    if chain.store is not None:
        for field in kind.accounts:
            # every account named has been created by a deposit
            if chain.get_account(getattr(tx, field)) is None:
                option = OPTION_OF_FIELD.get(field, "--" + field)
                raise UserError(f"{option}: account {getattr(tx, field)} does not exist (no deposit has created it)", code="unknown_account")
    if kind.instrument is not None:
        field, wanted = kind.instrument
        instrument_id = getattr(tx, field)
        specs = {spec.id: spec for spec in chain.genesis.instruments}
        # an instrument of the genesis
        if instrument_id not in specs:
            raise UserError(f"--{field}: instrument {instrument_id} is not in the genesis (ids: {sorted(specs)})", code="unknown_instrument")
        # a perpetual for a perp trade, an option series for an option trade or settlement
        if wanted is not None and specs[instrument_id].kind != wanted:
            what = {"perp": "a perpetual", "option": "an option series"}[wanted]
            raise UserError(f"--{field}: instrument {instrument_id} ({specs[instrument_id].name}) is not {what}", code="unknown_instrument")


# --- signing -------------------------------------------------------------------------------------


def get_wallet_typed_data(tx: WireModel, genesis: Genesis) -> dict[str, Any]:
    """eth_signTypedData_v4's parameter: integers of the message as decimal strings (JavaScript
    numbers lose precision above 2**53; wallets and eth-account read uint256/int256 strings).
    UserError for an L2-signed type: a wallet signs EIP-712, not with an L2 key."""
    if is_l2_signed(type(tx)):
        raise UserError(
            f"a {tx.type} is signed with the account's L2 key, not by a wallet: give the wallet key (--key, --keystore, "
            "-i) the L2 key derives from, or an L2 signature made elsewhere (--signature)",
            code="l2_signed",
        )
    data = get_typed_data(tx, genesis.signing_domain)
    data["message"] = {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in data["message"].items()}
    return data


def is_signed(tx: WireModel, party: Party) -> bool:
    return getattr(tx, party.signature_field) not in (PLACEHOLDER_SIGNATURE, PLACEHOLDER_L2_SIGNATURE)


def choose_parties(kind: TxKind, tx: WireModel, chain: Chain, side: str | None, signer: str) -> list[Party]:
    """The unsigned parties this signer signs for: --side, else the one party, else (a trade, with
    a node) those whose account is registered to the signer's address."""
    open_parties = [p for p in kind.parties if not is_signed(tx, p)]
    sides = [p.side for p in kind.parties]
    # something is left to sign
    if not open_parties:
        raise UserError(f"the {tx.type} is signed by every party already ({', '.join(sides)})", code="already_signed")
    if side is not None:
        chosen = [p for p in kind.parties if p.side == side]
        # a side of this type
        if not chosen:
            raise UserError(f"--side {side!r}: a {tx.type} is signed by {' and '.join(sides)}", code="invalid_side")
        # not signed twice
        if is_signed(tx, chosen[0]):
            raise UserError(f"the {side} has signed already", code="already_signed")
        return chosen
    if len(kind.parties) == 1:
        return open_parties
    # a trade offline: nothing says which side the key is
    if chain.store is None:
        raise UserError(f"name the side you sign with --side ({' or '.join(p.side for p in open_parties)})", code="invalid_side")
    mine = [p for p in open_parties if chain.get_account(getattr(tx, p.account_field)).address == signer]
    if not mine:
        owners = ", ".join(describe_party(tx, p, chain) for p in open_parties)
        raise UserError(f"{signer} signs for no unsigned side of this {tx.type} ({owners})", code="wrong_signer")
    return mine


def describe_party(tx: WireModel, party: Party, chain: Chain) -> str:
    account = getattr(tx, party.account_field)
    leaf = chain.get_account(account)
    return f"account {account} (the {party.side})" + (f" belongs to {leaf.address}" if leaf is not None else "")


def check_signer(tx: WireModel, party: Party, chain: Chain, signer: str | int, what: str) -> None:
    """With a node, the signer is the party's registered address, or for an L2-signed type its
    registered L2 key id (the rules check it again)."""
    leaf = chain.get_account(getattr(tx, party.account_field))
    if leaf is None:
        return
    if isinstance(signer, int):
        # an L2 signature is the account's registered key's
        if leaf.l2_key == 0:
            raise UserError(f"account {getattr(tx, party.account_field)} has no L2 key: register one first (rollup key register)", code="no_l2_key")
        if leaf.l2_key != signer:
            raise UserError(
                f"{what} is made by L2 key {signer:#x}, but {describe_party(tx, party, chain)} with L2 key {leaf.l2_key:#x}: the node would reject it",
                code="wrong_signer",
            )
        return
    if leaf.address != signer:
        raise UserError(f"{what} is {signer}'s, but {describe_party(tx, party, chain)}: the node would reject it", code="wrong_signer")


def find_l2_key(key: bytes, tx: WireModel, party: Party, chain: Chain) -> L2Key:
    """The L2 key the wallet key derives that the party's account registered (its first key offline)."""
    domain = chain.genesis.signing_domain
    leaf = chain.get_account(getattr(tx, party.account_field))
    if leaf is None:
        return derive_l2_key(key, domain, 0)
    # only a registered key signs
    if leaf.l2_key == 0:
        raise UserError(f"account {getattr(tx, party.account_field)} has no L2 key: register one first (rollup key register)", code="no_l2_key")
    for index in range(MAX_KEY_INDEX):
        derived = derive_l2_key(key, domain, index)
        if derived.key_id == leaf.l2_key:
            return derived
    raise UserError(
        f"account {getattr(tx, party.account_field)}'s L2 key ({leaf.l2_key:#x}) is not one this wallet key derives (indexes 0-{MAX_KEY_INDEX - 1})",
        code="wrong_signer",
    )


def check_signature_option(signature: str, source: KeySource, adapter: TypeAdapter, signer_of: Any) -> tuple[str, Any]:
    """--signature, made elsewhere: its wire form and its signer (`signer_of`: a recovered address
    or a verified L2 key id); a UserError says what is wrong with it."""
    # one signer at a time
    if source.keystore or source.key or source.interactive:
        raise UserError("--signature is a signature made elsewhere: give it or a key source, not both", code="usage_error")
    try:
        value = adapter.validate_python(signature)
        return value, signer_of(value)
    except (ValidationError, InvalidSignature) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise UserError(f"--signature: {message}", code="bad_signature") from None


def add_signatures(tx: WireModel, chain: Chain, source: KeySource, signature: str | None, side: str | None) -> tuple[WireModel, list[str]]:
    """`tx` with the signer's signature on its parties' fields (a key's, or --signature checked by
    recovery); returns it and the sides signed."""
    kind = get_kind(tx)
    if is_l2_signed(kind.model):
        return add_l2_signatures(tx, chain, source, signature, side)
    digest = compute_signing_digest(tx, chain.genesis.signing_domain)
    if signature is not None:
        value, signer = check_signature_option(signature, source, SIGNATURE_ADAPTER, lambda v: recover_address(digest, v))
        what = "the signature"
    else:
        key = load_private_key(source)
        signer = get_address(key)
        value = sign_digest(key, digest)
        what = "the key"
    parties = choose_parties(kind, tx, chain, side, signer)
    for party in parties:
        check_signer(tx, party, chain, signer, what)
    return tx.model_copy(update={p.signature_field: value for p in parties}), [p.side for p in parties]


def add_l2_signatures(tx: WireModel, chain: Chain, source: KeySource, signature: str | None, side: str | None) -> tuple[WireModel, list[str]]:
    """`add_signatures` for an L2-signed type: the wallet key's address picks the parties, and the
    L2 key it derives (the one the account registered) signs; or --signature, an L2 signature made
    elsewhere (A || R8 || S), checked by verification."""
    kind = get_kind(tx)
    message = compute_l2_message(tx, chain.genesis.signing_domain)
    if signature is not None:
        value, key_id = check_signature_option(signature, source, L2_SIGNATURE_ADAPTER, lambda v: verify_l2_signature(message, v))
        parties = choose_l2_parties(kind, tx, chain, side, key_id)
        for party in parties:
            check_signer(tx, party, chain, key_id, "the signature")
        return tx.model_copy(update={p.signature_field: value for p in parties}), [p.side for p in parties]
    key = load_private_key(source)
    parties = choose_parties(kind, tx, chain, side, get_address(key))
    update = {}
    for party in parties:
        l2_key = find_l2_key(key, tx, party, chain)
        update[party.signature_field] = sign_l2(l2_key.private, message)
    return tx.model_copy(update=update), [p.side for p in parties]


def choose_l2_parties(kind: TxKind, tx: WireModel, chain: Chain, side: str | None, key_id: int) -> list[Party]:
    """The unsigned parties an L2 signature made elsewhere signs for: --side, the one party, or
    (a trade, with a node) those whose account registered its key."""
    if side is not None or len(kind.parties) == 1 or chain.store is None:
        return choose_parties(kind, tx, chain, side, "")
    mine = [p for p in kind.parties if not is_signed(tx, p) and getattr(chain.get_account(getattr(tx, p.account_field)), "l2_key", 0) == key_id]
    if not mine:
        raise UserError(f"L2 key {key_id:#x} signs for no unsigned side of this {tx.type}", code="wrong_signer")
    return mine


def check_existing_signatures(tx: WireModel, chain: Chain) -> None:
    """The signatures a line already holds recover to their parties (a tampered or misplaced line
    is refused before anyone adds to it)."""
    kind = get_kind(tx)
    l2 = is_l2_signed(kind.model)
    digest = compute_signing_digest(tx, chain.genesis.signing_domain)
    message = compute_l2_message(tx, chain.genesis.signing_domain) if l2 else 0
    for party in kind.parties:
        if is_signed(tx, party):
            try:
                value = getattr(tx, party.signature_field)
                signer: str | int = verify_l2_signature(message, value) if l2 else recover_address(digest, value)
            except InvalidSignature as exc:
                raise UserError(f"the {party.side}'s signature on the line is invalid: {exc}", code="bad_signature") from None
            check_signer(tx, party, chain, signer, f"the {party.side}'s signature on the line")


# --- output --------------------------------------------------------------------------------------


def count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def append_line(out: Path, tx: WireModel) -> int:
    """Append the transaction as one JSON line; returns its line number (1-based)."""
    try:
        existing = out.read_bytes() if out.exists() else b""
        with open(out, "a", encoding="utf-8") as f:
            # a file whose last line has no newline would glue two transactions together
            if existing and not existing.endswith(b"\n"):
                f.write("\n")
            f.write(tx.model_dump_json() + "\n")
    except OSError as exc:
        raise UserError(f"cannot write --out {out}: {exc.strerror}", code="file_unwritable") from None
    return count_lines(out)


def submit_one(chain: Chain, tx: WireModel) -> dict[str, Any]:
    """Execute and commit the one transaction on the node; a rejection is an error naming the rule."""
    from rollup.cli.node import open_node
    from rollup.node import NodeError

    kind = get_kind(tx)
    missing = [p.side for p in kind.parties if not is_signed(tx, p)]
    # only a fully signed transaction executes
    if missing:
        raise UserError(
            f"the {' and '.join(missing)} has not signed: write it with --out FILE, and they add theirs with `rollup tx sign FILE --line N`",
            code="missing_signature",
        )
    node = open_node(chain.home)
    try:
        submission = node.submit([tx])
    except NodeError as exc:
        raise UserError(str(exc), code="node_error") from None
    finally:
        node.close()
    receipt = submission.receipts[0]
    # an accepted transaction, or the rule it broke
    if receipt.status != "accepted":
        raise UserError(f"the node rejected the {tx.type}: {receipt.reason}", code="rejected")
    return {"batch": submission.batches[0].number, "receipt": receipt.model_dump(), "new_root": "0x" + submission.new_root.hex()}


def emit(tx: WireModel, chain: Chain, signed: list[str], out: Path | None, submit: bool, json_output: bool) -> None:
    kind = get_kind(tx)
    tx_hash = "0x" + compute_signing_digest(tx, chain.genesis.signing_domain).hex()
    unsigned_sides = [p.side for p in kind.parties if not is_signed(tx, p)]
    result: dict[str, Any] = {"transaction": tx.model_dump(), "tx_hash": tx_hash, "signed": signed, "unsigned": unsigned_sides}
    if out is not None:
        result["out"] = str(out)
        result["line"] = append_line(out, tx)
    if submit:
        result.update(submit_one(chain, tx))
    if json_output:
        print_json(result)
        return
    if out is None and not submit:
        print(tx.model_dump_json())  # the line itself, for a pipe or `>> file.jsonl`
        return
    report(tx, result, out)


def report(tx: WireModel, result: dict[str, Any], out: Path | None) -> None:
    who = " and ".join(result["signed"])
    if out is not None:
        console.print(f"{tx.type} {result['tx_hash']} signed by the {who}: line {result['line']} of {out}", highlight=False)
        for side in result["unsigned"]:
            console.print(f"the {side} signs it with: rollup tx sign {out} --line {result['line']}", highlight=False)
    if "batch" in result:
        console.print(f"{tx.type} {result['tx_hash']} accepted in batch {result['batch']}; state root {result['new_root']}", highlight=False)


# --- the commands --------------------------------------------------------------------------------

SideOption = Annotated[
    Optional[str],
    typer.Option("--side", help="The side you sign (default: the side whose account is registered to your key).", show_default=False),
]
FeeOption = Annotated[str, typer.Option("--fee", help="Fee the taker/buyer pays to the fee pool: micro-USD, or e.g. 0.5USD.")]


@dataclass(frozen=True)
class Common:
    """The options every `rollup tx <type>` takes."""

    home: Path | None
    genesis: Path | None
    source: KeySource
    signature: str | None
    typed_data: bool
    out: Path | None
    submit: bool
    json_output: bool
    side: str | None = None


def run(name: str, fields: dict[str, Any], nonces: dict[str, int | None], common: Common) -> None:
    kind = KINDS[name]
    # one nonce option per signer (a caller bug otherwise)
    if set(nonces) != {p.side for p in kind.parties}:
        raise ValueError(f"{name}: nonces for {sorted(nonces)}, the signers are {[p.side for p in kind.parties]}")
    # --submit needs the node's state
    if common.submit and common.genesis is not None:
        raise UserError("--submit runs on a node: drop --genesis (or write with --out)", code="usage_error")
    with open_chain(common.home, common.genesis) as chain:
        tx = build_transaction(kind, fields, nonces, chain, common.out)
        if common.typed_data:
            print(json.dumps(get_wallet_typed_data(tx, chain.genesis), indent=2))
            return
        tx, signed = add_signatures(tx, chain, common.source, common.signature, common.side)
        emit(tx, chain, signed, common.out, common.submit, common.json_output)


def common_options(
    home: Path | None, genesis: Path | None, keystore: str | None, keystore_dir: Path | None, password_file: Path | None,
    interactive: bool, key: str | None, signature: str | None, typed_data: bool, out: Path | None, submit: bool,
    json_output: bool, side: str | None = None,
) -> Common:
    source = KeySource(keystore, keystore_dir, password_file, interactive, key, home)
    return Common(home, genesis, source, signature, typed_data, out, submit, json_output, side)


@app.command("transfer")
def transfer(
    sender: Annotated[int, typer.Option("--from", help="Your account id (it signs and pays).")],
    recipient: Annotated[int, typer.Option("--to", help="The receiving account id.")],
    amount: Annotated[str, typer.Option("--amount", help="Collateral to move: micro-USD, or e.g. 12.5USD.")],
    nonce: NonceOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, out: OutOption = None, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Move collateral from your account to another existing account."""
    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, out, submit, json_output)
    run("transfer", {"sender": sender, "recipient": recipient, "amount": parse_money(amount, "--amount")}, {"sender": nonce}, common)


@app.command("withdraw")
def withdraw(
    account: Annotated[int, typer.Option("--account", help="Your account id.")],
    amount: Annotated[str, typer.Option("--amount", help="Collateral to withdraw to L1: micro-USD, or e.g. 12.5USD.")],
    nonce: NonceOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, out: OutOption = None, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Withdraw collateral: claimable on L1 (`rollup l1 withdraw`) once its batch settles."""
    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, out, submit, json_output)
    run("withdraw", {"account": account, "amount": parse_money(amount, "--amount")}, {"owner": nonce}, common)


@app.command("perp-trade")
def perp_trade(
    maker: Annotated[int, typer.Option("--maker", help="The maker's account id.")],
    taker: Annotated[int, typer.Option("--taker", help="The taker's account id.")],
    market: Annotated[int, typer.Option("--market", help="Perpetual market id (the genesis' instruments).")],
    size: Annotated[int, typer.Option("--size", help="Contracts: > 0 the taker buys from the maker, < 0 the taker sells.")],
    price: Annotated[str, typer.Option("--price", help="Price per contract: micro-USD, or e.g. 61.25USD.")],
    fee: FeeOption = "0",
    maker_nonce: Annotated[Optional[int], typer.Option("--maker-nonce", help="Default: the maker's next, from the node.", show_default=False)] = None,
    taker_nonce: Annotated[Optional[int], typer.Option("--taker-nonce", help="Default: the taker's next, from the node.", show_default=False)] = None,
    side: SideOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, out: OutOption = None, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """A perpetual trade between a maker and a taker; both sign. Sign your side and write it with --out; the other side runs `rollup tx sign FILE --line N`."""
    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, out, submit, json_output, side)
    fields = {"maker": maker, "taker": taker, "market": market, "size": size, "price": parse_money(price, "--price"), "fee": parse_money(fee, "--fee")}
    run("perp_trade", fields, {"maker": maker_nonce, "taker": taker_nonce}, common)


@app.command("option-trade")
def option_trade(
    buyer: Annotated[int, typer.Option("--buyer", help="The buyer's account id.")],
    seller: Annotated[int, typer.Option("--seller", help="The seller's account id (may open a short).")],
    series: Annotated[int, typer.Option("--series", help="Option series id (the genesis' instruments).")],
    quantity: Annotated[int, typer.Option("--quantity", help="Contracts the buyer buys (> 0).")],
    premium: Annotated[str, typer.Option("--premium", help="Premium per contract: micro-USD, or e.g. 1.75USD.")],
    fee: FeeOption = "0",
    buyer_nonce: Annotated[Optional[int], typer.Option("--buyer-nonce", help="Default: the buyer's next, from the node.", show_default=False)] = None,
    seller_nonce: Annotated[Optional[int], typer.Option("--seller-nonce", help="Default: the seller's next, from the node.", show_default=False)] = None,
    side: SideOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, out: OutOption = None, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """An option trade: the buyer buys QUANTITY contracts of a series from the seller; both sign (the second with `rollup tx sign FILE --line N`)."""
    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, out, submit, json_output, side)
    fields = {
        "buyer": buyer, "seller": seller, "series": series, "quantity": quantity,
        "premium": parse_money(premium, "--premium"), "fee": parse_money(fee, "--fee"),
    }
    run("option_trade", fields, {"buyer": buyer_nonce, "seller": seller_nonce}, common)


@app.command("liquidate")
def liquidate(
    liquidator: Annotated[int, typer.Option("--liquidator", help="Your account id: it takes over the position.")],
    account: Annotated[int, typer.Option("--account", help="The account below maintenance margin.")],
    instrument: Annotated[int, typer.Option("--instrument", help="The instrument of the position taken over.")],
    size: Annotated[int, typer.Option("--size", help="Contracts taken over, signed as the account's position (it must shrink it).")],
    nonce: NonceOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, out: OutOption = None, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Take over part of an under-margined account's position at the mark price (signed by the liquidator)."""
    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, out, submit, json_output)
    fields = {"liquidator": liquidator, "account": account, "instrument": instrument, "size": size}
    run("liquidate", fields, {"liquidator": nonce}, common)


@app.command("settle-expired")
def settle_expired(
    sender: Annotated[int, typer.Option("--sender", help="Your account id (any registered account may settle: it signs and pays the nonce).")],
    account: Annotated[int, typer.Option("--account", help="The account holding the expired position.")],
    series: Annotated[int, typer.Option("--series", help="The expired option series.")],
    nonce: NonceOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, out: OutOption = None, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Cash-settle an account's position in an expired option series at the oracle's settlement price."""
    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, out, submit, json_output)
    run("settle_expired", {"sender": sender, "account": account, "series": series}, {"sender": nonce}, common)


@app.command("sign")
def sign_line(
    file: Annotated[Path, typer.Argument(help="The JSON-lines file holding the transaction.")],
    line: Annotated[int, typer.Option("--line", help="Its line number (1 is the first).")],
    side: SideOption = None,
    home: HomeOption = None, genesis: GenesisOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    signature: SignatureOption = None, typed_data: TypedDataOption = False, submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Add your signature to a transaction in a file (a trade's second side): the line is checked (its signatures recover to their parties), signed and rewritten in place."""
    from rollup.txfile import TransactionFileError, parse_transaction_lines

    common = common_options(home, genesis, keystore, keystore_dir, password_file, interactive, key, signature, typed_data, None, submit, json_output, side)
    lines = read_lines(file)
    # a line of the file
    if not 1 <= line <= len(lines):
        raise UserError(f"--line {line}: {file} has {len(lines)} lines", code="invalid_line")
    text = lines[line - 1]
    try:
        (tx,) = parse_transaction_lines([text])
    except TransactionFileError as exc:
        reasons = "; ".join((f"field '{e.field}': " if e.field else "") + e.message for e in exc.errors)
        raise UserError(f"{file}, line {line}: {reasons}", code="invalid_transaction") from None
    with open_chain(common.home, common.genesis) as chain:
        check_existing_signatures(tx, chain)
        if typed_data:
            print(json.dumps(get_wallet_typed_data(tx, chain.genesis), indent=2))
            return
        tx, signed = add_signatures(tx, chain, common.source, common.signature, common.side)
        lines[line - 1] = tx.model_dump_json()
        rewrite_lines(file, lines)
        kind = get_kind(tx)
        tx_hash = "0x" + compute_signing_digest(tx, chain.genesis.signing_domain).hex()
        result: dict[str, Any] = {"transaction": tx.model_dump(), "tx_hash": tx_hash, "signed": signed,
                                  "unsigned": [p.side for p in kind.parties if not is_signed(tx, p)], "out": str(file), "line": line}
        if submit:
            result.update(submit_one(chain, tx))
    if json_output:
        print_json(result)
        return
    report(tx, result, file)


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found", code="file_not_found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}", code="file_unreadable") from None


def rewrite_lines(path: Path, lines: list[str]) -> None:
    """Replace the file whole (a temporary file renamed over it): a crash leaves the old or the new."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(temporary, path)
    except OSError as exc:
        raise UserError(f"cannot rewrite {path}: {exc.strerror}", code="file_unwritable") from None
