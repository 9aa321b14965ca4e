"""Commit benchmark (issue 14): what storing one large batch costs, per store layout.

Builds a batch with parallel_bench's cached workload (one deposit per account as batch 1, the mixed
transactions as batch 2; default 10k accounts, 20k mixed transactions plus their key registrations,
about 30k transactions), then measures:

- `node`: `BatchResult.timings["commit_s"]` of a real node run per layout (the node's store class
  swapped for the run): the JSON the node builds for the commit plus `Store.commit_batch`;
- `store`: `commit_batch` alone on the same prepared bodies, receipts and diff rows, into a fresh
  store holding the batch's leaves before, per layout (alternating, best and median of
  `--repeats`), with the reads the prover and CLI do afterwards and the database's size;
- `json`: building the bodies the node passes (`model_dump_json` per transaction and receipt), and
  the serializer called directly, a cheaper path node.py could take.

Layouts: `rows` (rollup.storage.RowStore, a row per transaction, receipt and diff row: the
reference, schema 1) and `blobs` (rollup.storage.Store, per-batch blobs, schema 2).

Usage: python benchmarks/commit_bench.py [--accounts 10000] [--txs 20000] [--repeats 5]
       [--workloads bench-results/workloads] [--no-node]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

LAYOUTS = ("rows", "blobs")


def get_store_class(layout: str) -> type:
    from rollup.storage import RowStore, Store

    return {"rows": RowStore, "blobs": Store}[layout]


def run_node(layout: str, genesis, setup: list, batch: list) -> tuple[dict, object, dict[int, bytes]]:
    """One node run with the layout's store: (batch 2's timings, its result, the leaves before it)."""
    import rollup.node
    from rollup.node import Node
    from rollup.storage import get_leaves_before

    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(rollup.node, "Store", get_store_class(layout)):
        node = Node.init(Path(tmp) / "node", genesis, max_batch_txs=None)
        try:
            node.submit(setup)
            gc.collect()
            result = node.submit(batch).batch
            leaves_before = get_leaves_before(node.store, 2)
        finally:
            node.close()
    return result.timings, result, leaves_before


def time_commit(layout: str, leaves_before: dict[int, bytes], bodies: list[str], receipts: list[tuple[str, str]], diff: list) -> dict:
    """One commit of the prepared batch into a fresh store, then the reads of it."""
    from rollup.storage import DB_NAME, get_accepted_indices, get_leaves_before

    cls = get_store_class(layout)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "node"
        store = cls.create(home, "{}", leaves_before, b"\0" * 32)
        try:
            gc.collect()
            t0 = time.perf_counter()
            store.commit_batch(1, b"\0" * 32, b"\1" * 32, bodies, iter(receipts), diff, {"timings": {}})
            commit_s = time.perf_counter() - t0
            store.wait_for_checkpoint()
            db_bytes = sum(p.stat().st_size for p in home.iterdir() if p.name.startswith(DB_NAME))
            reads = {}

            def timed_read(name: str, read: Any) -> Any:
                t = time.perf_counter()
                value = read()
                reads[f"{name}_s"] = time.perf_counter() - t
                return value

            read_bodies = timed_read("get_transactions", lambda: store.get_transactions(1))
            read_receipts = timed_read("get_receipts", lambda: store.get_receipts(1))
            accepted = timed_read("get_accepted_indices", lambda: get_accepted_indices(store, 1))
            read_diff = timed_read("get_diff", lambda: store.get_diff(1))
            before = timed_read("get_leaves_before", lambda: get_leaves_before(store, 1))
        finally:
            store.close()
    # what was committed reads back, in every layout
    if read_bodies != bodies or read_receipts != [b for _, b in receipts] or read_diff != diff or before != leaves_before:
        raise SystemExit(f"layout {layout}: the batch did not read back as written")
    if accepted != [i for i, (status, _) in enumerate(receipts) if status == "accepted"]:
        raise SystemExit(f"layout {layout}: wrong accepted indices")
    return {"commit_s": commit_s, "db_and_wal_bytes": db_bytes, **reads}


def time_json(batch: list, receipts: list) -> dict:
    out = {}
    t = time.perf_counter()
    [tx.model_dump_json() for tx in batch]
    out["transactions_model_dump_json_s"] = time.perf_counter() - t
    t = time.perf_counter()
    [(r.status, r.model_dump_json()) for r in receipts]
    out["receipts_model_dump_json_s"] = time.perf_counter() - t
    # the same bytes from the pydantic-core serializer, without model_dump_json's wrapper and the
    # decode to str (a store taking bytes would also skip the encode back)
    t = time.perf_counter()
    [tx.__pydantic_serializer__.to_json(tx) for tx in batch]
    out["transactions_serializer_bytes_s"] = time.perf_counter() - t
    t = time.perf_counter()
    [r.__pydantic_serializer__.to_json(r) for r in receipts]
    out["receipts_serializer_bytes_s"] = time.perf_counter() - t
    return out


def summarise(values: list[float]) -> dict:
    return {"best": min(values), "median": statistics.median(values), "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workloads", type=Path, default=Path("bench-results/workloads"))
    parser.add_argument("--no-node", action="store_true", help="skip the node runs with the reference layout")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from parallel_bench import get_workload_files

    from rollup.txfile import read_transaction_file
    from verifier.wire import Genesis

    txs_path, genesis_path, summary = get_workload_files(args.workloads, args.accounts, args.txs, 0.0)
    genesis = Genesis.model_validate_json(genesis_path.read_text())
    transactions = read_transaction_file(txs_path)
    setup, batch = transactions[: summary["setup"]], transactions[summary["setup"] :]
    del transactions

    node: dict = {}
    timings, result, leaves_before = run_node("blobs", genesis, setup, batch)
    node["blobs"] = {k: v for k, v in timings.items() if k in ("commit_s", "diff_and_root_s", "total_s")}
    if not args.no_node:
        timings, reference, _ = run_node("rows", genesis, setup, batch)
        # the layouts store the same batch: same state afterwards
        if reference.new_root != result.new_root:
            raise SystemExit("the layouts' nodes ended at different roots")
        node["rows"] = {k: v for k, v in timings.items() if k in ("commit_s", "diff_and_root_s", "total_s")}

    bodies = [tx.model_dump_json() for tx in batch]
    receipts = [(r.status, r.model_dump_json()) for r in result.receipts]
    diff = result.diff_rows
    runs: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
    for _ in range(args.repeats):
        for layout in LAYOUTS:  # alternating: a shared machine's load falls on both
            runs[layout].append(time_commit(layout, leaves_before, bodies, receipts, diff))
    store = {
        layout: {key: summarise([r[key] for r in rs]) if key.endswith("_s") else rs[0][key] for key in rs[0]} for layout, rs in runs.items()
    }
    out = {
        "transactions": len(batch),
        "accepted": result.n_accepted,
        "diff_rows": len(diff),
        "transaction_json_bytes": sum(len(b) for b in bodies),
        "receipt_json_bytes": sum(len(b) for _, b in receipts),
        "repeats": args.repeats,
        "node": node,
        "store": store,
        "store_commit_speedup_best": store["rows"]["commit_s"]["best"] / store["blobs"]["commit_s"]["best"],
        "json": time_json(batch, result.receipts),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
