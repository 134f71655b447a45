"""What `dscache-operator run` needs before kopf starts: the operator extra and Kubernetes credentials.

Without them kopf would end in a traceback (no kopf) or retry its login for ever, logging one every
minute (no credentials). Each check returns the one line to print (exit 2), or None when satisfied.
The credential rule is the one `kube.Kube.connect` and kopf's login follow: in a pod, the
ServiceAccount token; else the kubeconfig files of KUBECONFIG (`os.pathsep`-separated), or
`~/.kube/config` when it is unset. Present credentials are then loaded as the operator's start-up
loads them (`client_problem`: `Kube.connect`, no request sent), so a kubeconfig without a current
context or not YAML at all is one line too, not a start-up retried every minute.

Then the ports the operator will listen on (`ports_problem`: metrics, liveness, webhook; a port taken
by another process made kopf's start-up fail with `Address already in use` and retry every minute)
and the API server itself (`api_problem`: one `GET /version`, a few seconds at most; an unreachable
server made kopf retry for a minute and print three tracebacks). Any HTTP answer, even 401, counts as
answering: the credentials are kopf's to report.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from dscache.api.urls import display_url

if TYPE_CHECKING:
    from dscache_operator.settings import Settings

# The modules of the `operator` extra in pyproject.toml.
OPERATOR_MODULES = ("kopf", "kubernetes_asyncio", "prometheus_client")
INSTALL_HINT = "pip install 'dscache[operator]'"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_KUBECONFIG = "~/.kube/config"
NO_CREDENTIALS = "no Kubernetes credentials: set KUBECONFIG or run in a pod"
API_TIMEOUT = 5.0
"""Seconds `api_problem` waits for the API server's answer (connect and reply)."""
KOPF_LIVENESS_HOST, KOPF_LIVENESS_PORT = "localhost", 80  # kopf's defaults for a liveness URL without them


def missing_dependency(modules: tuple[str, ...] = OPERATOR_MODULES) -> str | None:
    """The line naming the first module of the operator extra that cannot be imported, or None."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"the operator needs {module}, which cannot be imported ({err}): {INSTALL_HINT}"
    return None


def kubeconfig_paths(environ: Mapping[str, str]) -> list[str]:
    """The kubeconfig files the client reads, `~` expanded: KUBECONFIG's entries, else the default."""
    entries = [p.strip() for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
    return [os.path.expanduser(p) for p in entries or [DEFAULT_KUBECONFIG]]


def credentials_problem(
    environ: Mapping[str, str], exists: Callable[[str], bool] = os.path.isfile
) -> str | None:
    """The line saying why there are no credentials to reach the API server, or None if there are."""
    if environ.get("KUBERNETES_SERVICE_HOST") and exists(TOKEN_PATH):
        return None
    paths = kubeconfig_paths(environ)
    if any(exists(p) for p in paths):
        return None
    where = f"KUBECONFIG={environ['KUBECONFIG']}" if environ.get("KUBECONFIG") else DEFAULT_KUBECONFIG
    absent = "is not a file" if len(paths) == 1 else "names no file that exists"
    return f"{NO_CREDENTIALS} ({where} {absent}, and this is not a pod with a ServiceAccount token)"


def client_problem() -> str | None:
    """The line saying why the present credentials cannot be loaded (the client's reason, first line
    only), or None. Reads the process environment, as `Kube.connect` does; needs the operator extra
    (see `missing_dependency`)."""
    import yaml

    from dscache_operator.kube import Kube

    environ = os.environ
    where = f"KUBECONFIG={environ['KUBECONFIG']}" if environ.get("KUBECONFIG") else "the credentials"
    fix = "set KUBECONFIG to a working kubeconfig, or run in a pod"
    if not (environ.get("KUBERNETES_SERVICE_HOST") and os.path.isfile(TOKEN_PATH)):
        for path in filter(os.path.isfile, kubeconfig_paths(environ)):
            try:
                doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
                return f"{where} cannot be used: {path} cannot be read as YAML ({type(err).__name__}) ({fix})"
            if not isinstance(doc, dict):
                return f"{where} cannot be used: {path} is not a kubeconfig (a YAML mapping) ({fix})"

    async def load() -> None:
        kube = await Kube.connect()
        await kube.close()

    try:
        asyncio.run(load())
    except Exception as err:  # any loader failure: kopf would retry it for ever
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        return f"{where} cannot be used: {reason} ({fix})"
    return None


def listeners(ours: Settings) -> list[tuple[str, str, int]]:
    """Pure: what the operator will listen on, `(setting as the user names it, host, port)`: the
    metrics server (all addresses), kopf's liveness endpoint (its URL's host and port, kopf's
    defaults otherwise) and the webhook server (dev mode: its host; else its listen address)."""
    found = []
    if ours.metrics_port:
        found.append(
            (
                f"--metrics-port {ours.metrics_port} (DSCACHE_OPERATOR_METRICS_PORT)",
                "0.0.0.0",
                ours.metrics_port,
            )
        )
    if ours.liveness_url:
        parts = urlsplit(ours.liveness_url)
        try:
            port = parts.port or KOPF_LIVENESS_PORT
        except ValueError:
            port = 0  # not a URL kopf can serve either; not a port to check
        if port:
            what = f"--liveness {ours.liveness_url} (DSCACHE_OPERATOR_LIVENESS)"
            found.append((what, parts.hostname or KOPF_LIVENESS_HOST, port))
    hook = ours.webhook
    if hook.enabled:
        found.append(
            (
                f"--webhook-port {hook.port} (DSCACHE_OPERATOR_WEBHOOK_PORT)",
                hook.host if hook.dev else hook.addr,
                hook.port,
            )
        )
    return found


def bind_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on `host`:`port` (bound and closed again at once, with
    SO_REUSEADDR as the servers set it, so a port in TIME_WAIT is not refused), or None."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as err:
        return err.strerror or str(err)
    return None


def ports_problem(ours: Settings) -> str | None:
    """The line naming the first setting whose port the operator cannot listen on (in use by another
    process, or no permission), or None."""
    for what, host, port in listeners(ours):
        reason = bind_problem(host, port)
        if reason is not None:
            return (
                f"{what}: cannot listen on {host}:{port}: {reason} "
                "(another process listens there? choose another port)"
            )
    return None


def api_problem(timeout: float = API_TIMEOUT) -> str | None:
    """The line naming the API server (no credentials in it) when it does not answer one
    `GET /version` within `timeout` seconds (refused, unreachable, TLS failure), or None. Reads the
    process environment as `Kube.connect` does; call after `client_problem`."""
    import aiohttp
    from kubernetes_asyncio.client.exceptions import ApiException

    from dscache_operator.kube import Kube

    async def probe() -> tuple[str, str] | None:
        kube = await Kube.connect()
        server = str(kube.client.configuration.host)
        try:
            await kube.client.call_api(
                "/version",
                "GET",
                header_params={"Accept": "application/json"},
                response_types_map={200: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except ApiException:
            return None  # it answered
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            text = (str(err).strip().splitlines() or [""])[0][:300]
            return server, text or f"no answer within {timeout:g} s"
        finally:
            await kube.close()
        return None

    found = asyncio.run(probe())
    if found is None:
        return None
    server, reason = found
    where = f" (KUBECONFIG={os.environ['KUBECONFIG']})" if os.environ.get("KUBECONFIG") else ""
    return f"the API server {display_url(server)}{where} does not answer: {reason}"
