"""The live page (service/page.py, service/static/) in headless Chromium against a real `rollup
serve` on loopback: orders placed with the client appear in the page's book (over the WebSocket,
as deltas after the snapshot), the trade in its trades, the account's positions and the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup.node import Node
from rollup.signing import dev_account_key
from service.client import RollupExchange
from test_client import SEED, make_funded_home, stop_server
from test_service import get_free_port, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# what this machine's Chromium needs headless and offline (.library/env/machines/python.md)
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1300,900",
)
WAIT_S = 20
BTC = "BTC/USDC:USDC"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"),
]


@pytest.fixture
def served(tmp_path):
    home = make_funded_home(tmp_path / "home")
    port = get_free_port()
    process = start_server(home, port)
    yield f"http://127.0.0.1:{port}", home
    stop_server(process)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def rows(driver, table_id: str) -> list[dict[str, str]]:
    """The data attributes of a table body's rows, as the page renders them."""
    return driver.execute_script(
        f"return [...document.querySelectorAll('#{table_id} tr')].map(r => Object.assign({{text: r.innerText}}, r.dataset));"
    )


def wait_for(driver, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(lambda d: condition(d), message)


def test_page_shows_book_trades_positions_and_pipeline(served, browser) -> None:
    from selenium.webdriver.support.ui import Select

    base, home = served
    maker = RollupExchange(base, 1, dev_account_key(SEED, 1))
    taker = RollupExchange(base, 2, dev_account_key(SEED, 2))
    maker.create_order(BTC, "limit", "sell", 3, 60_000.5)
    browser.get(f"{base}/?market=0&account=1")
    # the snapshot: the one resting order
    wait_for(browser, lambda d: [(r["price"], r["size"]) for r in rows(d, "asks")] == [("60000500", "3")], "snapshot not shown")
    # then orders placed while the page is open arrive as deltas
    maker.create_order(BTC, "limit", "sell", 2, 60_010)
    maker.create_order(BTC, "limit", "buy", 4, 59_990.25)
    taker.create_order(BTC, "market", "buy", 1)
    book = maker.fetch_order_book(BTC)
    assert book["asks"] == [[60_000.5, 2], [60_010.0, 2]] and book["bids"] == [[59_990.25, 4]]
    # asks are listed highest first, above the bids
    wait_for(browser, lambda d: [r["text"].split() for r in rows(d, "asks")] == [["60010.000", "2"], ["60000.500", "2"]], "asks not updated")
    assert [r["text"].split() for r in rows(browser, "bids")] == [["59990.250", "4"]]
    wait_for(browser, lambda d: f"sequence {book['nonce']}" in d.find_element("id", "book-sequence").text, "sequence not shown")
    # the trade, from the trade stream: the taker's side, the maker's price
    trade = wait_for(browser, lambda d: rows(d, "trades") or None, "no trade shown")
    assert len(trade) == 1 and trade[0]["tradeId"] == "1" and trade[0]["text"].split()[1:] == ["buy", "60000.500", "1"]
    # the account's rollup positions (fills do not settle yet: the node's positions)
    node = Node.open(home)
    positions = {i: p.size for i, p in node.state.accounts[1].positions.items()}
    batch = node.batch_number
    node.close()
    wait_for(browser, lambda d: {int(r["instrument"]): int(r["size"]) for r in rows(d, "positions")} == positions, "positions not shown")
    assert "account 1: equity" in browser.find_element("id", "account-summary").text
    # the pipeline: the node's batch from /status, the batches from /batches (executed: no --prove)
    wait_for(browser, lambda d: f"batch {batch}," in d.find_element("id", "stage-batch").text, "batch not shown")
    wait_for(browser, lambda d: [r["text"].split()[:2] for r in rows(d, "batches") if r["text"][:1].isdigit()][:1] == [[str(batch), "executed"]], "batches not shown")
    assert "none settled" in browser.find_element("id", "stage-settlement").text
    # a lost delta: the page sees prev_sequence differ from its sequence and takes a new snapshot
    browser.execute_script("window.rollupPage.book.sequence -= 1;")
    taker.create_order(BTC, "limit", "buy", 6, 59_980)
    wait_for(browser, lambda d: "1 re-snapshots" in d.find_element("id", "book-sequence").text, "gap not detected")
    wait_for(browser, lambda d: [r["text"].split() for r in rows(d, "bids")] == [["59990.250", "4"], ["59980.000", "6"]], "bids not re-snapshotted")
    # another market: its own book
    maker.create_order("ETH/USDC:USDC", "limit", "sell", 9, 3_000.0001)
    Select(browser.find_element("id", "market")).select_by_visible_text("ETH-PERP")
    wait_for(browser, lambda d: [r["text"].split() for r in rows(d, "asks")] == [["3000.0001", "9"]], "ETH book not shown")
    assert rows(browser, "bids") == [] and rows(browser, "trades") == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
