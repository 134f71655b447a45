"""`dscache-operator`: the CRD printer and the run flags (defaults from DSCACHE_OPERATOR_*)."""

from __future__ import annotations

import pytest

from dscache_operator.cli import build_parser, main
from dscache_operator.crd import render


def test_crd_command_prints_the_generated_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == render()


def test_run_flags_default_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCACHE_OPERATOR_IMAGE", "registry.example/dscache:9")
    monkeypatch.setenv("DSCACHE_OPERATOR_METRICS_PORT", "0")
    args = build_parser().parse_args(["run", "--namespace", "a", "--namespace", "b"])
    assert args.image == "registry.example/dscache:9" and args.metrics_port == 0
    assert args.namespace == ["a", "b"] and args.priority is None and not args.standalone
