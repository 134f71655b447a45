"""`dscache-operator`: the CRD printer and the run flags (defaults from DSCACHE_OPERATOR_*)."""

from __future__ import annotations

import pytest

from dscache_operator.cli import build_parser, main
from dscache_operator.crd import render
from dscache_operator.settings import load


def test_crd_command_prints_the_generated_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == render()


def test_run_flags_default_from_environment() -> None:
    env = {"DSCACHE_OPERATOR_IMAGE": "registry.example/dscache:9", "DSCACHE_OPERATOR_METRICS_PORT": "0"}
    settings = load(vars(build_parser().parse_args(["run", "--namespace", "a", "--namespace", "b"])), env)
    assert settings.image == "registry.example/dscache:9" and settings.metrics_port == 0
    assert settings.namespaces == ("a", "b") and settings.priority is None and not settings.standalone


def test_webhook_is_off_by_default_and_flags_default_from_environment() -> None:
    settings = load(vars(build_parser().parse_args(["run"])), {})
    assert settings.webhook.cert is None and not settings.webhook.dev and settings.webhook.port == 9443
    assert not settings.webhook.enabled
    env = {
        "DSCACHE_OPERATOR_WEBHOOK_CERT": "/certs/tls.crt",
        "DSCACHE_OPERATOR_WEBHOOK_KEY": "/certs/tls.key",
        "DSCACHE_OPERATOR_WEBHOOK_PORT": "8443",
        "DSCACHE_OPERATOR_PREPARE_RESOURCES": '{"requests": {"cpu": "1"}}',
    }
    settings = load(vars(build_parser().parse_args(["run", "--prepare-wait", "60"])), env)
    assert (settings.webhook.cert, settings.webhook.key, settings.webhook.port) == (
        "/certs/tls.crt",
        "/certs/tls.key",
        8443,
    )
    assert settings.webhook.enabled
    assert settings.prepare_resources == {"requests": {"cpu": "1"}} and settings.prepare_wait == 60


def test_webhook_cert_without_key_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--webhook-cert", "/certs/tls.crt"]) == 2
    assert capsys.readouterr().err == (
        "dscache-operator: --webhook-cert and --webhook-key go together (set: --webhook-cert)\n"
    )
