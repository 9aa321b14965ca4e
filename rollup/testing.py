"""pytest fixtures for people testing their own strategies or circuits against the rollup.

Installed as a pytest plugin (entry point `pytest11: rollup`), so any test suite in an
environment where this project is installed can use:

- `small_workload`: a seeded, signed workload (genesis + 221 transactions over 20 accounts,
  20% of them on one hot account, 5% deliberately invalid) from `rollup.fixtures`;
- `workload_factory`: `workload_factory(**WorkloadSpec fields)` -> a new signed workload;
- `small_workload_files`: (transactions file, genesis file) of `small_workload` in the test's
  temporary directory, as `rollup fixtures` writes them;
- `node_factory`: `node_factory(genesis, name="node", **Node.init options)` -> a fresh `rollup.node.Node` in a
  temporary directory, closed after the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup.fixtures import Workload, WorkloadSpec, generate_workload, write_workload
from rollup.node import Node


@pytest.fixture(scope="session")
def small_workload() -> Workload:
    return generate_workload(WorkloadSpec(accounts=20, txs=200, seed=5, invalid_share=0.05, contention=0.2), workers=1)


@pytest.fixture(scope="session")
def workload_factory():
    def make(**fields) -> Workload:
        return generate_workload(WorkloadSpec(**fields), workers=1)

    return make


@pytest.fixture
def small_workload_files(tmp_path: Path, small_workload: Workload) -> tuple[Path, Path]:
    txs, genesis = tmp_path / "workload.jsonl", tmp_path / "genesis.json"
    write_workload(small_workload, txs, genesis)
    return txs, genesis


@pytest.fixture
def node_factory(tmp_path: Path):
    nodes: list[Node] = []

    def make(genesis, name: str = "node", **options) -> Node:
        node = Node.init(tmp_path / name, genesis, **options)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        try:
            node.close()
        except Exception:
            pass
