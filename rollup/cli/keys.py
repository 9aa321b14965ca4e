"""Private keys for the CLI: encrypted keystores (`rollup key new|import|list`) and the key sources every signing command takes.

A key is never read from, or printed to, the command line by default. Sources, as Foundry's `cast`
has them: `--keystore NAME|ADDRESS|FILE` (an eth-account v3 keystore, scrypt-encrypted, in the
keystore directory: `--keystore-dir DIR`, else HOME/keystore), with its password from
`--password-file FILE`, `$ROLLUP_PASSWORD` or a hidden prompt; `$ROLLUP_PRIVATE_KEY` (as cast's
`$ETH_PRIVATE_KEY`); `--interactive` (a hidden prompt). `--key 0x..` remains for tests and scripts
that hold TEST keys only, with a warning: a key in the arguments lands in the shell history and the
process list.

A command that signs declares the options below (`KeystoreOption`, ...) and calls
`load_private_key`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rollup.cli.common import UserError, console, console_err, print_json
from rollup.cli.node import HomeOption, JsonOption
from rollup.node import resolve_home

PrivateKey = bytes  # 32-byte secp256k1 secret
PRIVATE_KEY_ENV = "ROLLUP_PRIVATE_KEY"
PASSWORD_ENV = "ROLLUP_PASSWORD"
KEYSTORE_SUBDIR = "keystore"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ADDRESS = re.compile(r"(0x)?[0-9a-fA-F]{40}")

app = typer.Typer(
    help="Encrypted private keys (eth-account keystores, scrypt) in HOME/keystore or --keystore-dir: new, import, list; "
    "L2 keys derived from them: derive, register, show.",
    no_args_is_help=True,
)

KeystoreOption = Annotated[
    Optional[str],
    typer.Option(
        "--keystore",
        help="Sign with this keystore: its name in the keystore directory, its address, or a keystore file's path.",
        show_default=False,
    ),
]
KeystoreDirOption = Annotated[
    Optional[Path],
    typer.Option("--keystore-dir", help="Keystore directory (default: HOME/keystore).", show_default=False),
]
PasswordFileOption = Annotated[
    Optional[Path],
    typer.Option(
        "--password-file",
        help=f"Read the keystore password from this file's first line (default: ${PASSWORD_ENV}, else a hidden prompt).",
        show_default=False,
    ),
]
InteractiveOption = Annotated[
    bool, typer.Option("--interactive", help="Type the private key at a hidden prompt.")
]
DevKeyOption = Annotated[
    Optional[str],
    typer.Option(
        "--key",
        help=f"Private key as 0x-hex, for TEST keys only (it lands in the shell history; prefer --keystore or ${PRIVATE_KEY_ENV}).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class KeySource:
    """The key options of one command, as given."""

    keystore: str | None = None
    keystore_dir: Path | None = None
    password_file: Path | None = None
    interactive: bool = False
    key: str | None = None
    home: Path | None = None  # its keystore directory is the default one
    loaded: bytes | None = field(default=None, repr=False)  # the key, once a command has read it

# the options of every command that signs a transaction (`rollup tx <type>`, `rollup key register`)
GenesisOption = Annotated[
    Optional[Path],
    typer.Option("--genesis", help="Sign offline for this genesis (its L1 chain id and Rollup contract), without a node: nonces must be given.", show_default=False),
]
SignatureOption = Annotated[
    Optional[str],
    typer.Option(
        "--signature",
        help="A signature made elsewhere, checked, then attached instead of signing: a wallet's eth_signTypedData_v4 of --typed-data (withdrawals, key registrations), or an L2 signature A||R8||S, 160 bytes (transfers, trades, liquidations, settlements).",
        show_default=False,
    ),
]
TypedDataOption = Annotated[
    bool, typer.Option("--typed-data", help="Print the EIP-712 typed data a wallet signs (eth_signTypedData_v4) and stop (Ethereum-signed types only: withdrawals, key registrations).")
]
OutOption = Annotated[
    Optional[Path], typer.Option("--out", help="Append the transaction as a JSON line to this file (what `rollup submit` reads).", show_default=False)
]
SubmitOption = Annotated[bool, typer.Option("--submit", help="Execute it on the node now (a batch of one) and print the receipt.")]
NonceOption = Annotated[Optional[int], typer.Option("--nonce", help="The signer's nonce (default: the account's next, from the node).", show_default=False)]


# --- parsing and loading -------------------------------------------------------------------------


def parse_private_key(text: str, where: str) -> PrivateKey:
    """32 bytes from 0x-hex (or bare hex), a valid secp256k1 secret; UserError naming `where`, never
    echoing the text (it may be most of a key)."""
    from eth_keys.constants import SECPK1_N

    body = text.strip()
    body = body[2:] if body[:2].lower() == "0x" else body
    try:
        key = bytes.fromhex(body)
    except ValueError:
        key = b""
    # 32 bytes of hex
    if len(key) != 32:
        raise UserError(f"{where}: not a private key (expected 32 bytes as 0x + 64 hex digits)", code="invalid_key")
    # a scalar of the curve, not 0
    if not 0 < int.from_bytes(key, "big") < SECPK1_N:
        raise UserError(f"{where}: not a valid secp256k1 private key", code="invalid_key")
    return key


def get_keystore_dir(keystore_dir: Path | None, home: Path | None) -> Path:
    return keystore_dir if keystore_dir is not None else resolve_home(home) / KEYSTORE_SUBDIR


def find_keystore(name: str, keystore_dir: Path) -> Path:
    """The keystore file `name` names: a path to a file, an address (searched in the directory), or
    a name in the directory."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if _ADDRESS.fullmatch(name):
        wanted = name.lower().removeprefix("0x")
        for candidate in list_keystores(keystore_dir):
            if candidate.address.lower().removeprefix("0x") == wanted:
                return candidate.path
        raise UserError(f"no keystore for address {name} in {keystore_dir} (`rollup key list` shows them)", code="keystore_not_found")
    candidate = keystore_dir / f"{name}.json"
    if not candidate.is_file():
        raise UserError(f"no keystore named {name!r} in {keystore_dir} (`rollup key list` shows them)", code="keystore_not_found")
    return candidate


def read_password(password_file: Path | None, prompt: str, confirm: bool = False) -> str:
    """The password from --password-file (its first line), $ROLLUP_PASSWORD, or a hidden prompt."""
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"cannot read --password-file {password_file}: {exc.strerror}", code="password_unreadable") from None
        password = lines[0] if lines else ""
    elif os.environ.get(PASSWORD_ENV) is not None:
        password = os.environ[PASSWORD_ENV]
    else:
        password = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return password


def decrypt_keystore(path: Path, password: str) -> PrivateKey:
    from eth_account import Account

    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not a readable keystore file: {exc}", code="keystore_unreadable") from None
    try:
        return bytes(Account.decrypt(keystore, password))
    except ValueError as exc:
        # eth-account says "MAC mismatch" for a wrong password
        reason = "wrong password" if "MAC" in str(exc) else str(exc)
        raise UserError(f"cannot decrypt {path}: {reason}", code="wrong_password") from None
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path} is not an eth-account keystore (missing {exc})", code="keystore_unreadable") from None


def load_private_key(source: KeySource, required: bool = True) -> PrivateKey | None:
    """The key one source gives: the named one (--keystore, --interactive or --key; naming two is an
    error), else $ROLLUP_PRIVATE_KEY; None when nothing is named and not `required`. A source
    already read (`loaded`) is not read again: one password prompt per command."""
    if source.loaded is not None:
        return source.loaded
    named = [option for option, given in (("--keystore", source.keystore), ("--interactive", source.interactive), ("--key", source.key)) if given]
    # one key source at a time: which one would sign is not a guess
    if len(named) > 1:
        raise UserError(f"choose one key source, not {' and '.join(named)}", code="usage_error")
    if source.keystore:
        path = find_keystore(source.keystore, get_keystore_dir(source.keystore_dir, source.home))
        return decrypt_keystore(path, read_password(source.password_file, f"password for {path.name}"))
    if source.interactive:
        return parse_private_key(typer.prompt("private key", hide_input=True, err=True), "the private key typed")
    if source.key:
        console_err.print(
            "[yellow]warning:[/] --key puts the private key in the shell history and the process list; "
            f"use it for TEST keys only (--keystore, ${PRIVATE_KEY_ENV} or --interactive otherwise)",
            highlight=False,
        )
        return parse_private_key(source.key, "--key")
    if os.environ.get(PRIVATE_KEY_ENV):
        return parse_private_key(os.environ[PRIVATE_KEY_ENV], f"${PRIVATE_KEY_ENV}")
    if required:
        raise UserError(
            f"no key to sign with: name one with --keystore NAME, ${PRIVATE_KEY_ENV} or --interactive (or pass --signature)",
            code="no_key",
        )
    return None


# --- the keystore directory ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeystoreEntry:
    name: str
    address: str
    path: Path


def list_keystores(keystore_dir: Path) -> list[KeystoreEntry]:
    """Every keystore file in the directory (name = file name without .json), by name; files that
    are not keystores are skipped."""
    from eth_utils import is_hex_address, to_checksum_address

    entries = []
    if not keystore_dir.is_dir():
        return entries
    for path in sorted(keystore_dir.glob("*.json")):
        try:
            address = json.loads(path.read_text(encoding="utf-8")).get("address", "")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(address, str) and is_hex_address(address if address.startswith("0x") else "0x" + address):
            entries.append(KeystoreEntry(path.stem, to_checksum_address("0x" + address.removeprefix("0x")), path))
    return entries


def write_keystore(keystore_dir: Path, name: str, private_key: PrivateKey, password: str) -> KeystoreEntry:
    """Encrypt the key (eth-account, scrypt) into DIR/NAME.json, readable by its owner only; an
    existing name is never overwritten."""
    from eth_account import Account

    from rollup.signing import get_address

    # a name that is a plain file name (no path, no address look-alike)
    if not _NAME.fullmatch(name) or _ADDRESS.fullmatch(name):
        raise UserError(f"keystore name {name!r}: use letters, digits, '_', '.', '-' (at most 64), not an address", code="invalid_name")
    # a password: an empty one encrypts nothing
    if not password:
        raise UserError("the password is empty: a keystore needs one", code="empty_password")
    address = get_address(private_key)
    existing = [e.name for e in list_keystores(keystore_dir) if e.address == address]
    # one keystore per key: two names for one key would drift apart
    if existing:
        raise UserError(f"the key of {address} is already in {keystore_dir} as {existing[0]!r}", code="keystore_exists")
    keystore_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keystore_dir / f"{name}.json"
    keystore = Account.encrypt(private_key, password)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(f"a keystore named {name!r} exists in {keystore_dir}", code="keystore_exists") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(keystore, f)
    return KeystoreEntry(name, address, path)


def _report(entry: KeystoreEntry, verb: str, json_output: bool) -> None:
    info = {"name": entry.name, "address": entry.address, "file": str(entry.path)}
    if json_output:
        print_json(info)
    else:
        console.print(f"{verb} key [bold]{entry.name}[/]: address {entry.address}, keystore {entry.path}")


# --- commands -----------------------------------------------------------------------------------


NameArgument = Annotated[str, typer.Argument(help="The keystore's name (its file is DIR/NAME.json).")]


@app.command("new")
def new(
    name: NameArgument,
    keystore_dir: KeystoreDirOption = None,
    password_file: PasswordFileOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a random key and store it encrypted; prints its address, never the key."""
    from eth_account import Account

    directory = get_keystore_dir(keystore_dir, home)
    password = read_password(password_file, f"password for the new key {name!r}", confirm=True)
    entry = write_keystore(directory, name, bytes(Account.create().key), password)
    _report(entry, "created", json_output)


@app.command("import")
def import_key(
    name: NameArgument,
    keystore_dir: KeystoreDirOption = None,
    password_file: PasswordFileOption = None,
    key: DevKeyOption = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Store an existing private key encrypted. The key comes from a hidden prompt, or $ROLLUP_PRIVATE_KEY (or --key, for TEST keys)."""
    source = KeySource(key=key, interactive=not key and not os.environ.get(PRIVATE_KEY_ENV))
    private_key = load_private_key(source)
    directory = get_keystore_dir(keystore_dir, home)
    password = read_password(password_file, f"password for {name!r}", confirm=True)
    entry = write_keystore(directory, name, private_key, password)
    _report(entry, "imported", json_output)


@app.command("list")
def list_command(keystore_dir: KeystoreDirOption = None, home: HomeOption = None, json_output: JsonOption = False) -> None:
    """The keystores in the directory: name, address, file."""
    directory = get_keystore_dir(keystore_dir, home)
    entries = list_keystores(directory)
    if json_output:
        print_json({"keystore_dir": str(directory), "keys": [{"name": e.name, "address": e.address, "file": str(e.path)} for e in entries]})
        return
    if not entries:
        console.print(f"no keystores in {directory} (`rollup key new NAME` or `rollup key import NAME` makes one)")
        return
    table = Table(title=str(directory))
    for column in ("name", "address", "file"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.name, e.address, e.path.name)
    console.print(table)


# --- L2 keys (docs/l2keys.md) ----------------------------------------------------------------------

KeyIndexOption = Annotated[
    int, typer.Option("--index", min=0, max=2**32 - 1, help="Which L2 key to derive (0 first; a new index rotates the key).")
]


def derive_for(source: KeySource, home: Path | None, genesis: Path | None, index: int) -> dict[str, object]:
    """The L2 key the source's wallet key derives for the node's (or --genesis') deployment."""
    from rollup.cli.tx import open_chain
    from rollup.signing import derive_l2_key, get_address
    from verifier.babyjubjub import pack_point

    key = load_private_key(source)
    with open_chain(home, genesis) as chain:
        _, public, key_id = derive_l2_key(key, chain.genesis.signing_domain, index)
    return {"address": get_address(key), "index": index, "key_id": hex(key_id), "public_key": "0x" + pack_point(public).hex()}


@app.command("derive")
def derive(
    index: KeyIndexOption = 0,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    home: HomeOption = None,
    genesis: Annotated[Optional[Path], typer.Option("--genesis", help="Derive for this genesis' deployment, without a node.", show_default=False)] = None,
    json_output: JsonOption = False,
) -> None:
    """Derive your L2 key (EdDSA on BabyJubJub) from your wallet key: it signs a fixed EIP-712 message of this deployment, so the same wallet always re-derives the same key. Prints the key's id and public key, never the key."""
    info = derive_for(KeySource(keystore, keystore_dir, password_file, interactive, key, home), home, genesis, index)
    if json_output:
        print_json(info)
        return
    console.print(f"L2 key {index} of {info['address']}: id {info['key_id']}, public key {info['public_key']}", highlight=False)


@app.command("register")
def register(
    account: Annotated[int, typer.Option("--account", help="Your account id (its address signs the registration).")],
    index: KeyIndexOption = 0,
    key_id: Annotated[Optional[str], typer.Option("--key-id", help="Register this key id (0x-hex) instead of deriving one from the signing key (e.g. with --signature).", show_default=False)] = None,
    nonce: NonceOption = None,
    keystore: KeystoreOption = None, keystore_dir: KeystoreDirOption = None, password_file: PasswordFileOption = None,
    interactive: InteractiveOption = False, key: DevKeyOption = None,
    home: HomeOption = None,
    genesis: GenesisOption = None,
    signature: SignatureOption = None,
    address: Annotated[Optional[str], typer.Option("--address", help="The account's address (default: the signing key's).", show_default=False)] = None,
    typed_data: TypedDataOption = False,
    out: OutOption = None,
    submit: SubmitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Bind your L2 key to your account: a RegisterKey transaction signed (EIP-712) by the account's Ethereum address, the one L2 transaction that address signs. Registering again rotates the key."""
    from rollup.cli.tx import Common, run
    from rollup.signing import get_address

    source = KeySource(keystore, keystore_dir, password_file, interactive, key, home)
    if signature is None and not typed_data:
        source = replace(source, loaded=load_private_key(source))  # derive and sign with one prompt
    if key_id is None:
        # a wallet signature cannot derive the key: the id must come with it
        if signature is not None or typed_data:
            raise UserError("--signature and --typed-data need --key-id (derive it with `rollup key derive`) and --address", code="usage_error")
        info = derive_for(source, home, genesis, index)
        registered, owner = int(str(info["key_id"]), 16), str(info["address"])
    else:
        try:
            registered = int(key_id, 16)
        except ValueError:
            raise UserError(f"--key-id: {key_id!r} is not 0x-hex", code="usage_error") from None
        if address is None and signature is None and not typed_data:
            owner = get_address(load_private_key(source))  # type: ignore[arg-type]
        elif address is None:
            raise UserError("--address: name the account's address (the wallet that signs)", code="usage_error")
        else:
            owner = address
    common = Common(home, genesis, source, signature, typed_data, out, submit, json_output)
    run("register_key", {"account": account, "address": owner, "key_id": registered}, {"owner": nonce}, common)


@app.command("show")
def show(
    account: Annotated[int, typer.Option("--account", help="The account whose L2 key to show.")],
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """The L2 key id registered for an account in the node's state (none before a registration)."""
    from rollup.cli.tx import open_chain

    with open_chain(home, None) as chain:
        leaf = chain.get_account(account)
    if leaf is None:
        raise UserError(f"account {account} does not exist (no deposit has created it)", code="unknown_account")
    info = {"account": account, "address": leaf.address, "key_id": hex(leaf.l2_key) if leaf.l2_key else None, "nonce": leaf.nonce}
    if json_output:
        print_json(info)
        return
    what = f"L2 key id {info['key_id']}" if leaf.l2_key else "no L2 key registered (`rollup key register`)"
    console.print(f"account {account} ({leaf.address}): {what}", highlight=False)
