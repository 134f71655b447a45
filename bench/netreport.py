"""Pure: the network model's time limits for one run, and the benchmark's table (Markdown).

Two limits are printed for every run, both lower bounds on its time under the model:

    aggregate limit   B / aggregate cap
                      B: the workload's bytes. No client can beat it, however many streams it opens.
    own limit         (R x latency + M / per-connection cap) / S
                      R, M: the requests and downloaded bytes the proxy saw for this run; S: its
                      streams (connections moving response bytes at once), the mean an average byte
                      saw. What this client's own behaviour allows at best: each of its S streams
                      carries 1/S of the waiting for first bytes and of the bytes.

A time near its own limit means the client is held back by how few connections it opens (more
streams would help); a time near the aggregate limit means it uses the link fully. Times are seconds,
sizes decimal MB.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.netmodel import MB, Caps, Stats


@dataclass(frozen=True)
class Result:
    """One contender's run on one workload."""

    contender: str
    via: str
    delivers: str
    seconds: float
    stats: Stats
    check: str
    """"ok", or what was wrong with its output."""
    rounds: tuple[float, ...] = ()
    """Every round's time when the workload ran several rounds (`seconds` is their median)."""


def median_result(runs: list[Result]) -> Result:
    """Pure: one contender's rounds as one Result: the median time (of an even count, the upper of
    the two middle ones: a real run, whose stats it keeps), every round's time, and the first check
    that is not "ok" (else "ok")."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    middle = ordered[len(ordered) // 2]
    check = next((r.check for r in runs if r.check != "ok"), "ok")
    return replace(middle, check=check, rounds=tuple(r.seconds for r in runs))


def aggregate_limit(workload_bytes: int, caps: Caps) -> float:
    """Seconds the aggregate cap needs for the workload's bytes (0 without an aggregate cap)."""
    return workload_bytes / caps.aggregate_rate if caps.aggregate_rate else 0.0


def own_limit(stats: Stats, caps: Caps) -> float:
    """Seconds the per-connection model needs for what this run did over its mean streams."""
    if stats.mean_streams <= 0:
        return 0.0
    transfer = stats.bytes_down / caps.conn_rate if caps.conn_rate else 0.0
    return (stats.requests * caps.latency + transfer) / stats.mean_streams


def _ratio(seconds: float, limit: float) -> str:
    return f"{seconds / limit:.2f}" if limit > 0 else "-"


def table(results: list[Result], workload_bytes: int, caps: Caps) -> str:
    """The Markdown table of one workload's results, fastest first; with a column of each contender's
    fastest and slowest round when any ran several."""
    agg = aggregate_limit(workload_bytes, caps)
    rounds = any(len(r.rounds) > 1 for r in results)
    lines = [
        "| contender | via | delivers | time s | "
        + ("rounds s | " if rounds else "")
        + "x agg limit | x own limit | own limit s | streams | conns | requests | MB down | check |",
        "|---|---|---|---:|" + ("---:|" if rounds else "") + "---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(results, key=lambda r: r.seconds):
        own = own_limit(r.stats, caps)
        spread = ""
        if rounds:
            spread = f"{min(r.rounds):.1f}-{max(r.rounds):.1f} | " if r.rounds else "- | "
        lines.append(
            f"| {r.contender} | {r.via} | {r.delivers} | {r.seconds:.1f} | {spread}{_ratio(r.seconds, agg)} "
            f"| {_ratio(r.seconds, own)} | {own:.1f} | {r.stats.mean_streams:.1f} "
            f"| {r.stats.peak_connections} | {r.stats.requests:,} | {r.stats.bytes_down / MB:,.0f} "
            f"| {r.check} |"
        )
    return "\n".join(lines)
