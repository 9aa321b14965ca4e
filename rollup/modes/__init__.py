"""The execution modes, by name, and the options that choose one: every mode gives the receipts,
state, diff and root of sequential execution (tests/test_modes.py runs one suite over all).

- sequential: the reference, in this process (rollup/modes/sequential.py);
- partitioned: conflict-free partitions executed in parallel (rollup/modes/partitioned.py);
- pipelined: signatures checked on the workers while this process executes (rollup/modes/pipelined.py);
- sharded: account shards resident in workers across batches (rollup/modes/sharded.py).

A mode is `rollup.execution.Mode`: `execute(ctx, transactions, options, timings) -> Executed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollup.execution import Mode, ModeOptions
from rollup.modes import partitioned, pipelined, sequential, sharded

MODES: dict[str, Mode] = {
    "sequential": sequential.MODE,
    "partitioned": partitioned.MODE,
    "pipelined": pipelined.MODE,
    "sharded": sharded.MODE,
}


@dataclass(frozen=True, kw_only=True)
class ExecutionOptions(ModeOptions):
    """How `Node.submit` executes a batch: the mode's name and what it reads (`ModeOptions`).
    Checked on construction."""

    mode: str = "sequential"

    def __post_init__(self) -> None:
        super().__post_init__()
        # A mode we have.
        if self.mode not in MODES:
            raise ValueError(f"unknown execution mode {self.mode!r}: choose one of {', '.join(MODES)}")
        # A parallel mode runs on workers; the sequential one runs here only (its result is the reference).
        if MODES[self.mode].uses_workers and self.executor is None:
            raise ValueError(f"the {self.mode} mode runs on workers: give it an executor")
        if not MODES[self.mode].uses_workers and self.executor is not None:
            raise ValueError(f"the {self.mode} mode runs in this process: give it no executor")

    @property
    def execution_mode(self) -> Mode:
        return MODES[self.mode]
