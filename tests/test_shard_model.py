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


def make_params(latency: float = 0.0, kappa: float = 0.0, seal: float = 0.0, coordinator_per_shard: float = 0.0) -> dict:
    transport = {"coordinator_per_transaction_s": 0.0, "coordinator_per_move_s": 0.0, "coordinator_per_shard_s": coordinator_per_shard,
                 "latency_s": latency, "check_send_s": 0.0}
    # a check cost per L2 row falling from 400 µs (a shard with 10 rows) to 200 µs (10,000 rows)
    curve = {"n": [1000, 1], "l2_rows": [10.0, 10_000.0], "cpu_per_l2_row_s": [400e-6, 200e-6]}
    return {
        "shard_window": {"registration_s": 0.0, "per_estimated_s": 1e-6, "broadcast_s": 0.0, "move_s": 0.0, "fixed_s": 0.0, "kappa_s": kappa},
        "signatures": {"eth_cpu_per_row_s": 50e-6, "two parts": curve, "one part": curve},
        "seal_per_account_s": seal,
        "prepass_s": 0.0,
        "receipts_s": 0.0,
        "tail_s": 0.0,
        "transports": {"process": transport, "dask": dict(transport)},
    }


def make_windows(loads_us: list[list[float]], l2: list[list[int]] | None = None, finals: list[list[int]] | None = None) -> list[dict]:
    n = len(loads_us[0])
    return [
        {"transactions": 1, "moves": 0, "broadcast": 0, "shard_registrations": [0] * n, "shard_others_estimate_us": loads, "shard_moves": [0] * n,
         "shard_check_eth": [0] * n, "shard_check_l2": l2[w] if l2 else [0] * n, "shard_finals": finals[w] if finals else [0] * n}
        for w, loads in enumerate(loads_us)
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
    # two windows, the signature checks, the moves before the first window, the seal and the subtrees
    assert predicted["round_trips_s"] == pytest.approx(0.06)
    assert predicted["total_s"] == pytest.approx(2.06)


def test_scatter_grows_with_shards(model):
    params = make_params(kappa=1e-3)
    two = model.predict_batch_time(params, make_windows([[1e6] * 2]), [0] * 2, 2, 2, "process", 0.0)
    eight = model.predict_batch_time(params, make_windows([[1e6] * 8]), [0] * 8, 8, 8, "process", 0.0)
    assert eight["shards_critical_s"] > two["shards_critical_s"] > 1.0


def test_check_cost_falls_with_rows_checked_together(model):
    params = make_params()
    per_row = [model.get_check_cost_per_l2_row(params, "process", rows) for rows in (5, 10, 100, 10_000, 50_000)]
    # the measured ends outside the measured range, falling in between
    assert per_row[0] == per_row[1] == pytest.approx(400e-6)
    assert per_row[-1] == per_row[-2] == pytest.approx(200e-6)
    assert per_row[1] > per_row[2] > per_row[3]
    assert model.predict_check_cpu(params, "process", 100, 0) == pytest.approx(100 * 50e-6)


def test_check_parts_follow_the_engine(model):
    windows = make_windows([[1.0]] * 6)
    # over pipes: the windows up to a third of the batch, then the rest; Dask: one part
    assert model.get_check_parts(windows, "process") == [2, 4]
    assert model.get_check_parts(windows, "dask") == [6]


def test_signatures_split_over_shards_and_cost_more_per_row(model):
    params = make_params()
    one = model.predict_batch_time(params, make_windows([[0.0]] * 3, l2=[[3000]] * 3), [0], 1, 1, "dask", 0.0)
    four = model.predict_batch_time(params, make_windows([[0.0] * 4] * 3, l2=[[750] * 4] * 3), [0] * 4, 4, 4, "dask", 0.0)
    assert one["signatures_s"] == pytest.approx(9000 * model.get_check_cost_per_l2_row(params, "dask", 9000))
    # a quarter of the rows each, but dearer per row: more than a quarter of the time
    assert one["signatures_s"] / 4 < four["signatures_s"] < one["signatures_s"]
    # over pipes the first part (a third: 0.6 s) is checked while the coordinator plans the rest
    # (two thirds of 1 s): hidden whole; with 0.3 s of planning, 0.2 s of it is
    windows = make_windows([[0.0]] * 3, l2=[[3000]] * 3)
    assert model.predict_batch_time(params, windows, [0], 1, 1, "process", 1.0)["signatures_s"] == pytest.approx(one["signatures_s"] * 2 / 3)
    assert model.predict_batch_time(params, windows, [0], 1, 1, "process", 0.3)["signatures_s"] == pytest.approx(one["signatures_s"] - 0.2)


def test_idle_hashing_moves_the_seal_into_window_gaps(model):
    # shard 0 waits 1 s for shard 1 in each of two windows: time to hash its 1,000 final leaves
    params = make_params(seal=1e-3)
    windows = make_windows([[1e6, 2e6], [1e6, 2e6]], finals=[[1000, 0], [0, 1000]])
    process = model.predict_batch_time(params, windows, [1000, 1000], 2, 2, "process", 0.0)
    dask = model.predict_batch_time(params, windows, [1000, 1000], 2, 2, "dask", 0.0)
    assert process["idle_hashed_accounts"] == 1000
    # shard 1's leaves are final after the last window: hashed at the seal, as all of them over Dask
    assert process["seal_s"] == pytest.approx(1.0)
    assert dask["idle_hashed_accounts"] == 0 and dask["seal_s"] == pytest.approx(1.0)
    # one core for both shards: the idle hashing's CPU takes the core's time from the next window
    shared = model.predict_batch_time(params, windows, [1000, 1000], 2, 1, "process", 0.0)
    assert shared["shards_critical_s"] == pytest.approx(3.0 + 3.0 + 1.0)


def test_coordinator_cost_per_shard(model):
    params = make_params(coordinator_per_shard=1e-3)
    windows = make_windows([[0.0] * 8] * 2)
    # two windows and the 4 round trips outside them, 8 shards each
    assert model.predict_batch_time(params, windows, [0] * 8, 8, 8, "process", 0.0)["coordinator_windows_s"] == pytest.approx(6 * 8e-3)
