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


def test_webhook_is_off_by_default_and_flags_default_from_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = build_parser().parse_args(["run"])
    assert args.webhook_cert is None and not args.webhook_dev and args.webhook_port == 9443
    monkeypatch.setenv("DSCACHE_OPERATOR_WEBHOOK_CERT", "/certs/tls.crt")
    monkeypatch.setenv("DSCACHE_OPERATOR_WEBHOOK_KEY", "/certs/tls.key")
    monkeypatch.setenv("DSCACHE_OPERATOR_WEBHOOK_PORT", "8443")
    monkeypatch.setenv("DSCACHE_OPERATOR_PREPARE_RESOURCES", '{"requests": {"cpu": "1"}}')
    args = build_parser().parse_args(["run", "--prepare-wait", "60"])
    assert (args.webhook_cert, args.webhook_key, args.webhook_port) == (
        "/certs/tls.crt",
        "/certs/tls.key",
        8443,
    )
    assert args.prepare_resources == {"requests": {"cpu": "1"}} and args.prepare_wait == 60


def test_webhook_cert_without_key_is_refused() -> None:
    with pytest.raises(SystemExit, match="--webhook-cert and --webhook-key go together"):
        main(["run", "--webhook-cert", "/certs/tls.crt"])
