"""The limits the network benchmark compares each run with."""

from __future__ import annotations

import pytest

from tests.factories import load_bench

netmodel = load_bench("netmodel")
netreport = load_bench("netreport")
CAPS = netmodel.Caps(conn_rate=50e6, latency=0.020, aggregate_rate=1e9)


def _stats(streams: int, requests: int, bytes_down: int) -> object:
    return netmodel.Stats(
        connections=streams + 2,
        peak_connections=streams + 2,
        peak_streams=streams + 1,
        mean_streams=float(streams),
        requests=requests,
        bytes_down=bytes_down,
        bytes_up=0,
    )


def test_the_aggregate_limit_is_the_workload_over_the_cap() -> None:
    assert netreport.aggregate_limit(2_048_000_000, CAPS) == pytest.approx(2.048)
    assert netreport.aggregate_limit(2_048_000_000, netmodel.NO_CAPS) == 0.0


def test_the_own_limit_spreads_first_byte_waits_and_bytes_over_the_streams() -> None:
    # 4 streams, 4 requests, 2 GB: (4 x 0.02 s + 2e9 / 50e6 s) / 4 = 10.02 s
    assert netreport.own_limit(_stats(4, 4, 2_000_000_000), CAPS) == pytest.approx(10.02)
    # 16 streams, 20,000 requests of 8 KB: (20,000 x 0.02 + 1.6e8 / 5e7) / 16 = 25.2 s
    assert netreport.own_limit(_stats(16, 20_000, 160_000_000), CAPS) == pytest.approx(25.2)
    assert netreport.own_limit(_stats(0, 0, 0), CAPS) == 0.0


def test_the_table_lists_runs_fastest_first_with_both_ratios() -> None:
    slow = netreport.Result("slow", "S3", "files", 20.04, _stats(4, 4, 2_000_000_000), "ok")
    fast = netreport.Result("fast", "Hub", "files", 4.096, _stats(16, 4, 2_000_000_000), "ok")
    rows = netreport.table([slow, fast], 2_048_000_000, CAPS).splitlines()[2:]
    assert rows == [
        "| fast | Hub | files | 4.1 | 2.00 | 1.64 | 2.5 | 16.0 | 18 | 4 | 2,000 | ok |",
        "| slow | S3 | files | 20.0 | 9.79 | 2.00 | 10.0 | 4.0 | 6 | 4 | 2,000 | ok |",
    ]


BAD = "BAD: 1 of 60 objects missing or of the wrong size"


def test_rounds_give_the_median_and_the_range_of_each_contender() -> None:
    runs = [
        netreport.Result("dscache", "HTTP", "extracted", t, _stats(20, 700, 2_934_000_000), check)
        for t, check in (
            (30.9, "ok"),
            (30.1, "ok"),
            (30.4, BAD),
        )
    ]
    median = netreport.median_result(runs)
    assert (median.seconds, median.rounds) == (30.4, (30.9, 30.1, 30.4))
    assert median.check == BAD  # any bad round shows
    two = netreport.median_result(runs[:2])
    assert two.seconds == 30.9  # of an even count, the upper middle: a real run
    rows = netreport.table([median], 2_934_000_000, CAPS).splitlines()
    assert rows[0].startswith("| contender | via | delivers | time s | rounds s | x agg limit |")
    assert rows[2].startswith("| dscache | HTTP | extracted | 30.4 | 30.1-30.9 | 10.36 |")
