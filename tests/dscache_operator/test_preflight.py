"""`dscache-operator run` without the operator extra or without credentials: one line, exit 2, before
kopf starts (it was a ModuleNotFoundError traceback, or a login retried and logged every minute)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscache_operator.preflight import TOKEN_PATH, credentials_problem, missing_dependency

# `dscache-operator run ...` in a fresh interpreter; BLOCK names a module made unimportable first.
RUN = (
    "import os, sys\n"
    "for name in filter(None, os.environ.get('BLOCK', '').split(',')): sys.modules[name] = None\n"
    "from dscache_operator.cli import main\n"
    "sys.exit(main())\n"
)


def run_operator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "DSCACHE_OPERATOR_"))}
    argv = [sys.executable, "-c", RUN, "run", "--standalone", "--metrics-port", "0", *args]
    return subprocess.run(argv, check=False, env=clean | env, capture_output=True, text=True, timeout=30)


def test_run_without_kopf_says_to_install_the_operator_extra(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    out = run_operator({"BLOCK": "kopf", "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("dscache-operator: the operator needs kopf, which cannot be imported")
    assert out.stderr.endswith(": pip install 'dscache[operator]'\n"), out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_run_without_credentials_exits_at_once_naming_kubeconfig(tmp_path: Path) -> None:
    out = run_operator({"KUBECONFIG": "/nonexistent", "HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert out.stderr == (
        "dscache-operator: no Kubernetes credentials: set KUBECONFIG or run in a pod "
        "(KUBECONFIG=/nonexistent is not a file, and this is not a pod with a ServiceAccount token)\n"
    )


def test_run_with_a_kubeconfig_without_a_context_exits_at_once_saying_why(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    out = run_operator({"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert out.stderr == (
        f"dscache-operator: KUBECONFIG={kubeconfig} cannot be used: Invalid kube-config file. Expected key "
        f"current-context in {kubeconfig} (set KUBECONFIG to a working kubeconfig, or run in a pod)\n"
    )


WORKING = """\
apiVersion: v1
kind: Config
current-context: bed
contexts: [{name: bed, context: {cluster: bed, user: admin}}]
clusters: [{name: bed, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: admin, user: {token: not-a-secret}}]
"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (WORKING, None),
        ("- a list\n", "is not a kubeconfig (a YAML mapping)"),
        ("a: [\n", "cannot be read as YAML (ParserError)"),
    ],
)
def test_client_problem_loads_the_kubeconfig_as_the_operator_will(
    tmp_path: Path, text: str, reason: str | None
) -> None:
    """In a fresh process: the client reads KUBECONFIG when it is imported, as the operator's does."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(text)
    code = "from dscache_operator.preflight import client_problem\nprint(client_problem())"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env = clean | {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = (
        "None"
        if reason is None
        else f"KUBECONFIG={kubeconfig} cannot be used: {kubeconfig} {reason} "
        "(set KUBECONFIG to a working kubeconfig, or run in a pod)"
    )
    assert out.stdout == expected + "\n"


def test_missing_dependency_names_the_module() -> None:
    assert missing_dependency(("json", "dscache_no_such_module")) == (
        "the operator needs dscache_no_such_module, which cannot be imported "
        "(No module named 'dscache_no_such_module'): pip install 'dscache[operator]'"
    )
    assert missing_dependency(("json",)) is None


@pytest.mark.parametrize(
    ("environ", "files"),
    [
        ({"KUBECONFIG": f"/gone{os.pathsep}/kube/b"}, {"/kube/b"}),  # one of several is enough
        ({}, {os.path.expanduser("~/.kube/config")}),  # KUBECONFIG unset: the default file
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": "/gone"}, {TOKEN_PATH}),  # in a pod
    ],
)
def test_credentials_found(environ: dict[str, str], files: set[str]) -> None:
    assert credentials_problem(environ, files.__contains__) is None


def test_credentials_absent() -> None:
    assert credentials_problem({}, set().__contains__) == (
        "no Kubernetes credentials: set KUBECONFIG or run in a pod "
        "(~/.kube/config is not a file, and this is not a pod with a ServiceAccount token)"
    )
    token_only = {TOKEN_PATH}.__contains__  # a token file without the service host is not a pod
    problem = credentials_problem({"KUBECONFIG": f"/a{os.pathsep}/b"}, token_only)
    assert problem is not None and "(KUBECONFIG=/a:/b names no file that exists," in problem


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(WORKING.replace("https://127.0.0.1:6443", server))
    return kubeconfig


def test_run_against_an_api_server_that_does_not_answer_exits_at_once_naming_it(tmp_path: Path) -> None:
    """It retried for about a minute and printed three tracebacks in 115 lines, exit 1."""
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        server = f"https://127.0.0.1:{closed.getsockname()[1]}"
        kubeconfig = _kubeconfig(tmp_path, server)
        started = time.monotonic()
        out = run_operator({"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}, "--liveness", "")
        took = time.monotonic() - started
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(
        f"dscache-operator: the API server {server} (KUBECONFIG={kubeconfig}) does not answer: "
    ), out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert took < 20  # preflight's one request (5 s at most) and start-up, not kopf's minute of retries


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (
            ("--metrics-port", "{port}"),
            "--metrics-port {port} (DSCACHE_OPERATOR_METRICS_PORT): cannot listen on 0.0.0.0:{port}",
        ),
        (
            ("--liveness", "http://127.0.0.1:{port}/healthz"),
            "--liveness http://127.0.0.1:{port}/healthz (DSCACHE_OPERATOR_LIVENESS): "
            "cannot listen on 127.0.0.1:{port}",
        ),
        (
            ("--webhook-dev", "--webhook-port", "{port}"),
            "--webhook-port {port} (DSCACHE_OPERATOR_WEBHOOK_PORT): cannot listen on 127.0.0.1:{port}",
        ),
    ],
)
def test_run_with_a_port_in_use_exits_at_once_naming_the_setting(
    tmp_path: Path, flags: tuple[str, ...], named: str
) -> None:
    """kopf's start-up failed with `Address already in use` as a traceback and retried every minute."""
    kubeconfig = _kubeconfig(tmp_path, "https://127.0.0.1:1")  # never reached: the ports come first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = [flag.format(port=port) for flag in flags]
        env = {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
        out = run_operator(env, "--liveness", "", *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr == (
        f"dscache-operator: {named.format(port=port)}: Address already in use "
        "(another process listens there? choose another port)\n"
    )
