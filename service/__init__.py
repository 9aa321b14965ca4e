"""The sequencer service: `rollup serve`, an HTTP and WebSocket API in front of the matching engine
and the rollup node (docs/service.md).

- `journal`: the accepted messages and the engine's records, the pending rollup transactions and
  the batches' progress, in SQLite, replayed on start.
- `sequencer`: admission, matching, the journal and the views (orders, trades, books, account
  streams) in one place; fills enter the rollup queue through one seam (`fill_to_transaction`).
- `batcher`: pending transactions into the node's batches on size and time (the node on a thread
  of its own), exactly once across crashes; a prover thread proves and settles them.
- `oracle_clock`: signed oracle updates from the embedded feed.
- `views`: an account's positions, margin and Greeks; the oracle's marks.
- `app`: the ASGI application (FastAPI): routes, streams, errors as JSON.
- `load`: a load driver (orders over HTTP by concurrent clients) for tests and benchmarks.
- `cli`: the `rollup serve` command.
"""
