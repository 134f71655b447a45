"""The contenders of the network benchmark: dscache run from several checkouts side by side."""

from __future__ import annotations

from pathlib import Path

from tests.factories import load_bench

contenders = load_bench("contenders")


def test_each_checkout_gets_its_own_dscache_rows_and_the_other_tools_run_once() -> None:
    base, new = Path("/tmp/base"), Path("/tmp/new")
    every = contenders.with_sources(contenders.CONTENDERS, [base, new])
    dscache = [(c.name, c.via, c.src) for c in every if c.name.startswith("dscache")]
    assert dscache == [
        ("dscache base", "HTTP", base),
        ("dscache new", "HTTP", new),
        ("dscache base", "S3", base),
        ("dscache new", "S3", new),
        ("dscache base", "Hub", base),
        ("dscache new", "Hub", new),
    ]
    others = [c.name for c in every if not c.name.startswith("dscache")]
    assert others == [c.name for c in contenders.CONTENDERS if c.name != "dscache"]


def test_without_checkouts_dscache_runs_from_this_one() -> None:
    assert contenders.with_sources(contenders.CONTENDERS, []) == contenders.CONTENDERS
    assert all(c.src is None for c in contenders.CONTENDERS)
