"""What `dscache-operator run` needs before kopf starts: the operator extra and Kubernetes credentials.

Without them kopf would end in a traceback (no kopf) or retry its login for ever, logging one every
minute (no credentials). Each check returns the one line to print (exit 2), or None when satisfied.
The credential rule is the one `kube.Kube.connect` and kopf's login follow: in a pod, the
ServiceAccount token; else the kubeconfig files of KUBECONFIG (`os.pathsep`-separated), or
`~/.kube/config` when it is unset. Only the files' presence is checked here; their content is the
Kubernetes client's to judge.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping

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
