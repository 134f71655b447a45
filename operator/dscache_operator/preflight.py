"""What `dscache-operator run` needs before kopf starts: the operator extra and Kubernetes credentials.

Without them kopf would end in a traceback (no kopf) or retry its login for ever, logging one every
minute (no credentials). Each check returns the one line to print (exit 2), or None when satisfied.
The credential rule is the one `kube.Kube.connect` and kopf's login follow: in a pod, the
ServiceAccount token; else the kubeconfig files of KUBECONFIG (`os.pathsep`-separated), or
`~/.kube/config` when it is unset. Present credentials are then loaded as the operator's start-up
loads them (`client_problem`: `Kube.connect`, no request sent), so a kubeconfig without a current
context or not YAML at all is one line too, not a start-up retried every minute.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

# The modules of the `operator` extra in pyproject.toml.
OPERATOR_MODULES = ("kopf", "kubernetes_asyncio", "prometheus_client")
INSTALL_HINT = "pip install 'dscache[operator]'"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_KUBECONFIG = "~/.kube/config"
NO_CREDENTIALS = "no Kubernetes credentials: set KUBECONFIG or run in a pod"


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
