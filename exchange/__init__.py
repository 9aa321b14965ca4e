"""The exchange in front of the rollup: signed orders, order books and the matching engine.

- `orders`: the signed messages (Order, Cancel, CancelAll), their EIP-712 digests and checks.
- `records`: commands in, fills, trades, book deltas and order updates out.
- `book_reference` (obviously correct) and `book` (fast): one market, the same API and records.
- `engine`: a book per market and the admission of signed messages; `parallel`: markets
  partitioned across worker processes with the records of sequential matching.

docs/exchange.md has the design.
"""
