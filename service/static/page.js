// The live page: the order book and trades from the service's WebSockets, an account's positions,
// and the batch -> proof -> settlement pipeline (polled). Plain JavaScript, no build step.
import { MICRO_USD_PER_SIZE_UNIT, USD } from "./units.js";

const POLL_MS = 2000;
const MAX_TRADES = 50;
const params = new URLSearchParams(location.search);
const state = {
  specs: new Map(),      // instrument id -> genesis spec
  market: null,
  account: params.get("account"),
  book: { bids: new Map(), asks: new Map(), sequence: null },
  resyncs: 0,
  bookSocket: null,
  tradeSocket: null,
  trades: [],
  batchesAvailable: true,
};

window.rollupPage = state;  // for the browser's console and the page's test

const $ = (id) => document.getElementById(id);

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// --- units: micro-USD per contract -> USD per unit of the underlying ------------------------------

function priceFactor(instrument) {
  return state.specs.get(instrument).contract_size * MICRO_USD_PER_SIZE_UNIT;
}

function formatPrice(instrument, price) {
  const factor = priceFactor(instrument);
  const decimals = Math.max(0, Math.ceil(Math.log10(factor)));
  return (price / factor).toFixed(decimals);
}

function formatUsd(microUsd) {
  return (microUsd / USD).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function row(cells, attributes = {}) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  for (const [key, value] of Object.entries(attributes)) tr.dataset[key] = value;
  return tr;
}

// --- order book: a snapshot, then deltas; a gap in the sequence numbers re-snapshots ---------------

function connectBook() {
  if (state.bookSocket) {
    state.bookSocket.onclose = null;
    state.bookSocket.close();
  }
  const market = state.market;
  const socket = new WebSocket(`ws://${location.host}/ws/book/${market}`);
  state.bookSocket = socket;
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "snapshot") {
      state.book = {
        bids: new Map(message.bids),
        asks: new Map(message.asks),
        sequence: message.sequence,
      };
    } else if (message.type === "delta") {
      // a delta applies only on top of the one before it: otherwise start over from a snapshot
      if (message.prev_sequence !== state.book.sequence) {
        state.resyncs += 1;
        connectBook();
        return;
      }
      for (const side of ["bids", "asks"]) {
        for (const [price, total] of message[side]) {
          if (total) state.book[side].set(price, total);
          else state.book[side].delete(price);
        }
      }
      state.book.sequence = message.sequence;
    } else if (message.type === "error") {
      $("connection").textContent = `book stream: ${message.message}`;
      return;
    }
    renderBook();
  };
  socket.onopen = () => { $("connection").textContent = "live"; };
  socket.onclose = () => {
    $("connection").textContent = "book stream closed; reconnecting…";
    if (state.bookSocket === socket && state.market === market) setTimeout(connectBook, 1000);
  };
}

function renderBook() {
  const market = state.market;
  const asks = [...state.book.asks.entries()].sort((a, b) => b[0] - a[0]);  // highest at the top
  const bids = [...state.book.bids.entries()].sort((a, b) => b[0] - a[0]);
  $("asks").replaceChildren(...asks.map(([p, s]) => row([cell(formatPrice(market, p)), cell(String(s))], { price: p, size: s })));
  $("bids").replaceChildren(...bids.map(([p, s]) => row([cell(formatPrice(market, p)), cell(String(s))], { price: p, size: s })));
  const bestBid = bids.length ? bids[0][0] : null;
  const bestAsk = asks.length ? asks[asks.length - 1][0] : null;
  $("spread-cell").textContent = bestBid !== null && bestAsk !== null
    ? `spread ${formatPrice(market, bestAsk - bestBid)}`
    : (bestBid === null && bestAsk === null ? "no orders" : "one-sided book");
  $("book-sequence").textContent = `sequence ${state.book.sequence}` + (state.resyncs ? `, ${state.resyncs} re-snapshots` : "");
}

// --- trades: the stream first, then the recent ones (deduplicated by trade id) ---------------------

function addTrades(trades) {
  const known = new Set(state.trades.map((t) => t.trade_id));
  for (const trade of trades) if (!known.has(trade.trade_id)) state.trades.push(trade);
  state.trades.sort((a, b) => b.trade_id - a.trade_id);
  state.trades.length = Math.min(state.trades.length, MAX_TRADES);
  renderTrades();
}

function renderTrades() {
  const market = state.market;
  $("trades").replaceChildren(...state.trades.map((t) => row([
    cell(new Date(t.time_ms).toISOString().slice(11, 23)),
    cell(t.side, t.side),
    cell(formatPrice(market, t.price)),
    cell(String(t.size)),
  ], { tradeId: t.trade_id, price: t.price, size: t.size })));
  $("no-trades").hidden = state.trades.length > 0;
}

function connectTrades() {
  if (state.tradeSocket) {
    state.tradeSocket.onclose = null;
    state.tradeSocket.close();
  }
  const market = state.market;
  const socket = new WebSocket(`ws://${location.host}/ws/trades/${market}`);
  state.tradeSocket = socket;
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "trade" && message.market === state.market) addTrades([message]);
  };
  socket.onopen = async () => addTrades(await getJSON(`/trades/${market}?limit=${MAX_TRADES}`));
  socket.onclose = () => {
    if (state.tradeSocket === socket && state.market === market) setTimeout(connectTrades, 1000);
  };
}

// --- positions of an account (polled) -----------------------------------------------------------------

async function refreshPositions() {
  if (state.account === null || state.account === "") return;
  let account;
  try {
    account = await getJSON(`/accounts/${state.account}`);
  } catch (error) {
    $("positions").replaceChildren();
    $("account-summary").textContent = "";
    $("positions-note").textContent = error.status === 404 ? `account ${state.account} does not exist` : String(error);
    $("positions-note").hidden = false;
    return;
  }
  let marks = new Map();
  try {
    marks = new Map((await getJSON("/marks")).marks.map((m) => [m.instrument, m.mark]));
  } catch (error) { /* a service without /marks: no mark column */ }
  const openByInstrument = new Map();
  for (const order of account.open_orders) {
    const id = order.order.instrument;
    openByInstrument.set(id, (openByInstrument.get(id) || 0) + 1);
  }
  const rows = account.positions.map((p) => {
    const spec = state.specs.get(p.instrument);
    const entry = spec.kind === "perp" && p.size ? formatPrice(p.instrument, p.cost / p.size) : "";
    const mark = marks.get(p.instrument);
    return row([
      cell(p.name), cell(String(p.size), p.size > 0 ? "buy" : "sell"), cell(entry),
      cell(mark === null || mark === undefined ? "" : formatPrice(p.instrument, mark)),
      cell(String(openByInstrument.get(p.instrument) || 0)),
    ], { instrument: p.instrument, size: p.size });
  });
  $("positions").replaceChildren(...rows);
  $("account-summary").textContent =
    `account ${account.account}: equity ${formatUsd(account.equity)} USD, initial margin ${formatUsd(account.initial_margin)} USD, ` +
    `${account.open_orders.length} open orders`;
  $("positions-note").textContent = "no positions (fills settle on the rollup once they become rollup transactions)";
  $("positions-note").hidden = rows.length > 0;
}

// --- the pipeline: /status always, /batches where the service has it ---------------------------------

function setStage(id, text, className) {
  const stage = $(id);
  stage.querySelector(".value").textContent = text;
  stage.className = className || "";
}

async function refreshPipeline() {
  try {
    const status = await getJSON("/status");
    setStage("stage-batch", `batch ${status.node.batch}, root ${status.node.root.slice(0, 10)}…`, status.node.batch > 0 ? "done" : "");
    const settles = status.settlement && status.settlement.fills_settle_on_rollup;
    $("exchange-status").textContent =
      `exchange: ${status.exchange.commands} commands, ${status.exchange.open_orders} open orders, ` +
      `${status.exchange.accepting ? "accepting" : "NOT accepting"}` +
      (status.settlement && !settles ? ` — ${status.settlement.note}` : "");
    if (!state.batchesAvailable) {
      setStage("stage-proof", "not reported (no /batches)", "missing");
      setStage("stage-settlement", settles ? "see /status" : "fills not settled on the rollup yet", "missing");
    }
  } catch (error) {
    $("exchange-status").textContent = `status: ${error}`;
  }
  if (state.batchesAvailable) await refreshBatches();
}

function describe(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function refreshBatches() {
  let batches;
  try {
    batches = await getJSON("/batches");
  } catch (error) {
    // the service has no batch listing yet: say so, and stop asking
    if (error.status === 404 || error.status === 405) {
      state.batchesAvailable = false;
      $("batches").textContent = "GET /batches: not available on this service";
      refreshPipeline();
    }
    return;
  }
  // newest first: number, state (executed -> proving -> proven -> settled, or failed), counts, root
  const list = Array.isArray(batches) ? batches : (batches.batches || []);
  const columns = ["number", "state", "n_tx", "n_accepted", "new_root", "reason"];
  const table = document.createElement("table");
  table.append(row(columns.map((k) => { const th = document.createElement("th"); th.textContent = k; return th; })));
  for (const batch of list) {
    table.append(row(columns.map((k) => cell(k === "new_root" ? describe(batch[k]).slice(0, 18) : describe(batch[k])))));
  }
  $("batches").replaceChildren(table);
  const newest = (states) => list.find((b) => states.includes(b.state));
  const proving = newest(["proving", "proven", "settled", "failed"]);
  const settled = newest(["settled"]);
  setStage("stage-proof", proving ? `batch ${proving.number}: ${proving.state}` : "no batch proven (--prove is off?)");
  setStage("stage-settlement", settled ? `batch ${settled.number} settled` : "none settled");
}

// --- start ---------------------------------------------------------------------------------------

function selectMarket(market) {
  state.market = market;
  state.book = { bids: new Map(), asks: new Map(), sequence: null };
  state.trades = [];
  state.resyncs = 0;
  renderBook();
  renderTrades();
  connectBook();
  connectTrades();
}

async function start() {
  const genesis = await getJSON("/genesis");
  for (const spec of genesis.instruments) state.specs.set(spec.id, spec);
  const markets = await getJSON("/markets");
  const select = $("market");
  for (const m of markets) {
    const option = document.createElement("option");
    option.value = m.market;
    option.textContent = m.name;
    select.append(option);
  }
  const wanted = Number(params.get("market") ?? markets[0].market);
  select.value = String(wanted);
  select.onchange = () => selectMarket(Number(select.value));
  const accountInput = $("account");
  accountInput.value = state.account ?? "";
  accountInput.onchange = () => { state.account = accountInput.value; refreshPositions(); };
  selectMarket(wanted);
  refreshPositions();
  refreshPipeline();
  setInterval(refreshPositions, POLL_MS);
  setInterval(refreshPipeline, POLL_MS);
}

start().catch((error) => { $("connection").textContent = `failed to start: ${error}`; });
