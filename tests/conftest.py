"""Shared pytest fixtures: small signed workloads and nodes built from them.

They are also the public fixtures for people testing their own strategies: `small_workload`
(a seeded, signed workload with its genesis) and `node_factory` (fresh nodes in tmp dirs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup.fixtures import WorkloadSpec, generate_workload
from rollup.node import Node


@pytest.fixture(scope="session")
def small_workload():
    """200 mixed transactions over 20 accounts, 20% contention, 5% deliberately invalid."""
    return generate_workload(WorkloadSpec(accounts=20, txs=200, seed=3, invalid_share=0.05, contention=0.2), workers=1)


@pytest.fixture
def node_factory(tmp_path: Path):
    """`node_factory(genesis, name="node")` -> a new Node in its own directory under tmp_path."""
    nodes: list[Node] = []

    def make(genesis, name: str = "node") -> Node:
        node = Node.init(tmp_path / name, genesis)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        try:
            node.close()
        except Exception:
            pass
