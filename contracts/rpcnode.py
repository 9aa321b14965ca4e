"""A local JSON-RPC Ethereum node for tests and demos: Foundry's anvil, installed from npm.

npm's `@foundry-rs/anvil-linux-amd64` is anvil's native binary as a package (package.json lists it
under optionalDependencies, so `npm ci` installs it where it runs and skips it elsewhere; it has no
install script and downloads nothing). We run the binary directly, not through a node wrapper that
would sit between us and the process we stop. The node runs Prague, as the embedded py-evm chain
does, with the same 30M block gas limit; its ten dev accounts are unlocked and funded.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from web3 import HTTPProvider, Web3

from contracts.chain import BLOCK_GAS_LIMIT

ANVIL_ENV = "ROLLUP_ANVIL"  # path of an anvil binary, to use instead of the one npm installed
NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
HARDFORK = "prague"  # py-evm's newest fork: both L1s run the same rules
STARTUP_TIMEOUT = 20.0  # seconds for the node to answer its first request
_NPM_PLATFORMS = {("linux", "x86_64"): "linux-amd64", ("linux", "aarch64"): "linux-arm64", ("darwin", "arm64"): "darwin-arm64", ("darwin", "x86_64"): "darwin-amd64"}


class RpcNodeError(RuntimeError):
    """The local JSON-RPC node is not installed, or did not start."""


def find_anvil() -> Path:
    """The anvil binary: $ROLLUP_ANVIL, else the one `npm ci` put in node_modules, else anvil on PATH
    (e.g. from foundryup)."""
    if os.environ.get(ANVIL_ENV):
        return Path(os.environ[ANVIL_ENV])
    suffix = _NPM_PLATFORMS.get((sys.platform, platform.machine()))
    candidate = NODE_MODULES / "@foundry-rs" / f"anvil-{suffix}" / "bin" / "anvil"
    if suffix and candidate.is_file():
        return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise RpcNodeError(f"no local JSON-RPC node: anvil is not installed (npm ci installs @foundry-rs/anvil-{suffix or '<platform>'}; or set {ANVIL_ENV})")


def get_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def start_local_rpc_node(port: int) -> Iterator[str]:
    """Run anvil on 127.0.0.1:`port` for the duration of the block; yield its URL. The node lives
    in memory: its chain is gone when the block ends."""
    binary = find_anvil()
    url = f"http://127.0.0.1:{port}"
    command = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--hardfork", HARDFORK, "--gas-limit", str(BLOCK_GAS_LIMIT), "--silent"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, url, log)
            yield url
        finally:
            _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 1}))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not w3.is_connected():
        # the node is still running (else it failed: a port in use, a bad flag)
        if process.poll() is not None:
            log.seek(0)
            raise RpcNodeError(f"anvil exited with status {process.returncode}: {log.read().decode(errors='replace').strip()}")
        # it answers in time
        if time.monotonic() > deadline:
            raise RpcNodeError(f"anvil did not answer at {url} within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
