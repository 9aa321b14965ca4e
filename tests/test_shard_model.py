"""The sharding scaling model's pure parts (benchmarks/shard_model.py): order statistics, shared
cores, and how the predicted batch time responds to shards, cores and latency."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def model():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("shard_model", BENCHMARKS / "shard_model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def make_params(latency: float = 0.0, kappa: float = 0.0) -> dict:
    transport = {"coordinator_per_transaction_s": 0.0, "coordinator_per_shard_s": 0.0, "latency_s": latency}
    return {
        "shard_window": {"registration_s": 0.0, "per_estimated_s": 1e-6, "broadcast_s": 0.0, "move_s": 0.0, "fixed_s": 0.0, "kappa_s": kappa},
        "seal_per_account_s": 0.0,
        "prepass_s": 0.0,
        "tail_s": 0.0,
        "transports": {"process": transport},
    }


def make_windows(loads_us: list[list[float]]) -> list[dict]:
    n = len(loads_us[0])
    return [
        {"transactions": 0, "broadcast": 0, "shard_registrations": [0] * n, "shard_others_estimate_us": loads, "shard_moves": [0] * n}
        for loads in loads_us
    ]


def test_expected_max_of_normals(model):
    # E[max of 2 standard normals] = 1 / sqrt(pi); one variable has no spread above its mean
    assert model.compute_expected_max(1) == 0.0
    assert model.compute_expected_max(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-6)
    values = [model.compute_expected_max(n) for n in (2, 8, 32, 128)]
    assert values == sorted(values)


def test_shared_cores(model):
    assert model.compute_shared_cores(1, 2, 0) == 1.0
    assert model.compute_shared_cores(4, 2, 0) == 2.0
    # two busy processes against two of other users' on two cores: one core
    assert model.compute_shared_cores(2, 2, 2) == pytest.approx(1.0)


def test_slowest_shard_sets_the_window(model):
    params = make_params()
    windows = make_windows([[3e6, 1e6]])
    assert model.predict_batch_time(params, windows, [0, 0], 2, 2, "process", 0.0)["shards_critical_s"] == pytest.approx(3.0)
    # one core for two shards: their total
    assert model.predict_batch_time(params, windows, [0, 0], 2, 1, "process", 0.0)["shards_critical_s"] == pytest.approx(4.0)


def test_latency_per_window_and_round_trip(model):
    params = make_params(latency=0.01)
    windows = make_windows([[1e6], [1e6]])
    predicted = model.predict_batch_time(params, windows, [0], 1, 1, "process", 0.0)
    # two windows, the moves before the first, the seal and the subtrees
    assert predicted["round_trips_s"] == pytest.approx(0.05)
    assert predicted["total_s"] == pytest.approx(2.05)


def test_scatter_grows_with_shards(model):
    params = make_params(kappa=1e-3)
    two = model.predict_batch_time(params, make_windows([[1e6] * 2]), [0] * 2, 2, 2, "process", 0.0)
    eight = model.predict_batch_time(params, make_windows([[1e6] * 8]), [0] * 8, 8, 8, "process", 0.0)
    assert eight["shards_critical_s"] > two["shards_critical_s"] > 1.0
