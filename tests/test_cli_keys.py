"""`rollup key new|import|list` and the keystore key source: eth-account keystores, passwords from a file, the environment or a prompt, keys never printed or stored in the clear."""

from __future__ import annotations

import json
import stat

from eth_account import Account
from typer.testing import CliRunner

from rollup.cli.main import app
from rollup.signing import dev_account_key, get_address

runner = CliRunner()
KEY = dev_account_key(11, 0)
KEY_HEX = "0x" + KEY.hex()


def run(*args: str, code: int = 0, env: dict | None = None, input: str | None = None):
    result = runner.invoke(app, list(args), env=env, input=input)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    # whatever happens, the private key is never printed
    assert KEY.hex() not in result.output
    return result


def error_of(result) -> dict:
    return json.loads(result.stdout)["error"]


def test_import_list_and_decrypt(tmp_path):
    directory = str(tmp_path / "keys")
    password = tmp_path / "password"
    password.write_text("correct horse battery\n")
    imported = json.loads(
        run("key", "import", "alice", "--keystore-dir", directory, "--password-file", str(password), "--json", env={"ROLLUP_PRIVATE_KEY": KEY_HEX}).stdout
    )
    assert imported["address"] == get_address(KEY)
    path = tmp_path / "keys" / "alice.json"
    assert imported["file"] == str(path)
    # readable by its owner only, encrypted: the key is not in the file, the password opens it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert KEY.hex() not in path.read_text()
    assert bytes(Account.decrypt(json.loads(path.read_text()), "correct horse battery")) == KEY
    listed = json.loads(run("key", "list", "--keystore-dir", directory, "--json").stdout)
    assert listed["keys"] == [{"name": "alice", "address": get_address(KEY), "file": str(path)}]
    assert "alice" in run("key", "list", "--keystore-dir", directory).stdout


def test_new_key_from_prompts_is_listed_under_the_node_home(tmp_path):
    home = str(tmp_path / "home")
    made = run("key", "new", "bob", "--home", home, "--json", input="pw one\npw one\n")
    info = json.loads(made.stdout)  # the prompts are on stderr
    keystore = json.loads((tmp_path / "home" / "keystore" / "bob.json").read_text())
    assert get_address(bytes(Account.decrypt(keystore, "pw one"))) == info["address"]
    assert "pw one" not in made.output
    # the password is confirmed: a typo refuses (click asks again; no input left aborts)
    again = run("key", "new", "carol", "--home", home, input="a\nb\n", code=1)
    assert not (tmp_path / "home" / "keystore" / "carol.json").exists() and "Traceback" not in again.output


def test_import_from_hidden_prompt(tmp_path):
    directory = str(tmp_path / "keys")
    result = run("key", "import", "dave", "--keystore-dir", directory, "--json", env={"ROLLUP_PASSWORD": "pw"}, input=KEY_HEX + "\n")
    assert json.loads(result.stdout)["address"] == get_address(KEY)


def test_invalid_keystore_operations(tmp_path):
    directory = str(tmp_path / "keys")
    env = {"ROLLUP_PRIVATE_KEY": KEY_HEX, "ROLLUP_PASSWORD": "pw"}
    run("key", "import", "erin", "--keystore-dir", directory, env=env)
    cases = [
        (("key", "import", "erin2", "--keystore-dir", directory), env, "keystore_exists", "already in"),
        (("key", "import", "../evil", "--keystore-dir", directory), env, "invalid_name", "keystore name"),
        (("key", "new", "empty", "--keystore-dir", directory), {"ROLLUP_PASSWORD": ""}, "empty_password", "password is empty"),
        (("key", "import", "bad", "--keystore-dir", directory), {"ROLLUP_PRIVATE_KEY": "0x" + "00" * 32, "ROLLUP_PASSWORD": "pw"}, "invalid_key", "not a valid secp256k1"),
        (("key", "list", "--keystore-dir", directory, "--password-file", "x"), None, None, "No such option"),
    ]
    for args, case_env, code, text in cases:
        result = runner.invoke(app, [*args, "--json"], env=case_env)
        assert result.exit_code != 0 and text in result.output, (args, result.output)
        if code is not None:
            assert error_of(result)["code"] == code


def test_keystore_signs_by_name_address_or_path(tmp_path):
    """Through `rollup tx --typed-data`-free offline signing: the keystore's key signs, found by its
    name, its address or its file; a wrong password or an unknown name is refused."""
    from rollup.genesis import default_genesis

    directory = tmp_path / "keys"
    env = {"ROLLUP_PRIVATE_KEY": KEY_HEX, "ROLLUP_PASSWORD": "pw"}
    run("key", "import", "frank", "--keystore-dir", str(directory), env=env)
    genesis = tmp_path / "genesis.json"
    genesis.write_text(default_genesis(get_address(dev_account_key(11, 1))).model_dump_json())
    tx = ("tx", "withdraw", "--account", "4", "--amount", "5", "--nonce", "0", "--genesis", str(genesis), "--keystore-dir", str(directory))
    by_env = json.loads(run(*tx, "--json", env={"ROLLUP_PRIVATE_KEY": KEY_HEX}).stdout)["transaction"]
    for name in ("frank", get_address(KEY), get_address(KEY).lower()[2:], str(directory / "frank.json")):
        signed = json.loads(run(*tx, "--keystore", name, "--json", env={"ROLLUP_PASSWORD": "pw"}).stdout)["transaction"]
        assert signed == by_env
    wrong = runner.invoke(app, [*tx, "--keystore", "frank", "--json"], env={"ROLLUP_PASSWORD": "nope"})
    assert wrong.exit_code == 1 and error_of(wrong)["code"] == "wrong_password" and "wrong password" in wrong.stderr
    unknown = runner.invoke(app, [*tx, "--keystore", "grace", "--json"], env={"ROLLUP_PASSWORD": "pw"})
    assert unknown.exit_code == 1 and error_of(unknown)["code"] == "keystore_not_found"


# --- L2 keys: derive, register, show ------------------------------------------------------------


def _genesis_file(tmp_path) -> str:
    from rollup.genesis import default_genesis

    path = tmp_path / "genesis.json"
    path.write_text(default_genesis(get_address(dev_account_key(11, 99))).model_dump_json())
    return str(path)


def test_derive_is_deterministic_and_rotates_by_index(tmp_path):
    from rollup.signing import derive_l2_key
    from verifier.wire import Genesis

    genesis = _genesis_file(tmp_path)
    env = {"ROLLUP_PRIVATE_KEY": KEY_HEX}
    first = json.loads(run("key", "derive", "--genesis", genesis, "--json", env=env).stdout)
    again = json.loads(run("key", "derive", "--genesis", genesis, "--json", env=env).stdout)
    rotated = json.loads(run("key", "derive", "--genesis", genesis, "--index", "1", "--json", env=env).stdout)
    assert first == again and first["address"] == get_address(KEY) and first["index"] == 0
    assert rotated["key_id"] != first["key_id"] and rotated["public_key"] != first["public_key"]
    domain = Genesis.model_validate_json(open(genesis).read()).signing_domain
    assert int(first["key_id"], 16) == derive_l2_key(KEY, domain, 0)[2]
    assert first["key_id"] in run("key", "derive", "--genesis", genesis, env=env).stdout


def test_register_offline_signs_a_registration_of_the_derived_key(tmp_path):
    from verifier.encoding import compute_signing_digest, recover_address
    from verifier.wire import Genesis, RegisterKey

    genesis = _genesis_file(tmp_path)
    env = {"ROLLUP_PRIVATE_KEY": KEY_HEX}
    derived = json.loads(run("key", "derive", "--genesis", genesis, "--json", env=env).stdout)
    line = run("key", "register", "--account", "5", "--nonce", "2", "--genesis", genesis, env=env).stdout
    tx = RegisterKey.model_validate_json(line)
    assert (tx.account, tx.nonce, tx.address, hex(tx.key_id)) == (5, 2, get_address(KEY), derived["key_id"])
    domain = Genesis.model_validate_json(open(genesis).read()).signing_domain
    assert recover_address(compute_signing_digest(tx, domain), tx.signature) == get_address(KEY)
    typed = json.loads(run("key", "register", "--account", "5", "--nonce", "2", "--genesis", genesis, "--key-id", derived["key_id"],
                           "--address", get_address(KEY), "--typed-data").stdout)
    assert typed["primaryType"] == "RegisterKey" and typed["message"]["key_id"] == str(int(derived["key_id"], 16))


def test_invalid_l2_key_commands(tmp_path):
    genesis = _genesis_file(tmp_path)
    # no key to derive from
    assert error_of(run("key", "derive", "--genesis", genesis, "--json", code=1))["code"] == "no_key"
    # a wallet's signature cannot derive the key
    out = run("key", "register", "--account", "1", "--nonce", "0", "--genesis", genesis, "--signature", "0x" + "11" * 65, "--json", code=1)
    assert "--key-id" in error_of(out)["message"]
    out = run("key", "register", "--account", "1", "--nonce", "0", "--genesis", genesis, "--key-id", "zz", "--json", code=1, env={"ROLLUP_PRIVATE_KEY": KEY_HEX})
    assert "--key-id" in error_of(out)["message"]
    # a key id of 0 means "no key"
    out = run("key", "register", "--account", "1", "--nonce", "0", "--genesis", genesis, "--key-id", "0x0", "--json", code=1, env={"ROLLUP_PRIVATE_KEY": KEY_HEX})
    assert "--key-id" in error_of(out)["message"]
    # show needs a node
    assert error_of(run("key", "show", "--account", "1", "--home", str(tmp_path / "none"), "--json", code=1))["code"] == "no_node"
