"""The sequencer service: `rollup serve`, an HTTP and WebSocket API in front of the matching engine.

- `journal`: the accepted messages and the engine's records, in SQLite, replayed on start.
- `sequencer`: admission, matching, the journal and the views (orders, trades, books) in one place.
- `app`: the ASGI application (FastAPI): routes, streams, errors as JSON.
- `cli`: the `rollup serve` command.

Fills do not become rollup transactions yet (there is no `Fill` transaction type): the service
matches and publishes; the rollup's state does not change. docs/exchange.md plans the rest.
"""
