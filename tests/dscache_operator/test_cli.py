"""`dscache-operator`: the CRD printer, the run flags (defaults from DSCACHE_OPERATOR_*), and that
`run` ends when kopf does."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aioadapters  # how kopf.operator waits for its stop flag

from dscache_operator import cli
from dscache_operator.admissionserver import ServerApi
from dscache_operator.cli import build_parser, main
from dscache_operator.crd import render
from dscache_operator.kube import Kube
from dscache_operator.settings import Settings, WebhookSettings, load
from tests.dscache_operator.fakekube import FakeKube
from tests.dscache_operator.test_admissionserver import free_port


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


def test_run_ends_when_kopf_ends_with_the_webhook_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM stops kopf; the process must then end. kopf waits for its stop flag, and a threading
    flag it waits for in an executor thread its loop's shutdown then joins for ever (the pod was
    killed at terminationGracePeriodSeconds instead of exiting)."""
    kube = FakeKube()

    async def connect() -> ServerApi:
        return kube

    async def operator(**kwargs: Any) -> None:  # kopf.operator until a signal: waits for the flag
        waiting = asyncio.create_task(aioadapters.wait_flag(kwargs["stop_flag"]))
        await asyncio.sleep(0.05)
        waiting.cancel()

    monkeypatch.setattr(Kube, "connect", staticmethod(connect))
    monkeypatch.setattr(kopf, "operator", operator)
    monkeypatch.setattr(kopf, "configure", lambda **_: None)
    monkeypatch.setattr(sys, "setswitchinterval", lambda _: None)
    hook = WebhookSettings(dev=True, host="127.0.0.1", port=free_port())
    ours = Settings(namespaces=("ml",), peering_name="test", webhook=hook)
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(cli._run(ours)), daemon=True)
    run.start()
    run.join(10)
    assert not run.is_alive() and codes == [0]
