"""A benchmark run from a plain `pip install -e .` stops at once with one line naming what to install
(the dev extra), instead of a traceback after a minute of preparing data; bench_install's help says
what it reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.factories import load_bench

network = load_bench("bench_network")
install = load_bench("bench_install")
needs = load_bench("needs")


def _without(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(needs, "find_spec", lambda name: None if name == module else real(name))


def _no_further(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the benchmark went past its check of what is installed")


def test_bench_network_without_moto_names_it_and_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without(monkeypatch, "moto")
    monkeypatch.setattr(network, "proxy_binary", _no_further)
    with pytest.raises(SystemExit) as stop:
        network.main(["--small", "--work", str(tmp_path / "work")])
    assert str(stop.value) == (
        "bench_network.py: not installed: moto (the S3 server of the S3 rows); "
        "install the dev extra first: pip install -e '.[dev]'"
    )
    assert not (tmp_path / "work").exists()


def test_bench_install_without_molmospaces_names_it_and_the_way_around(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without(monkeypatch, "molmospaces_resources")
    monkeypatch.setattr(install, "prepare_remote", _no_further)
    with pytest.raises(SystemExit) as stop:
        install.main(["--work", str(tmp_path / "work")])
    assert str(stop.value) == (
        "bench_install.py: not installed: molmospaces_resources (the molmospaces baseline; or "
        "--skip-molmo); install the dev extra first: pip install -e '.[dev]'"
    )


def test_bench_install_help_says_the_median_round_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        install.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--repeat REPEAT rounds of every contender (the median is reported)" in help_text
    assert "best" not in help_text
