"""Start, probe and stop one bed: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a
node (containerd + kubelet), the service proxy and local-path-provisioner.

Every process binds 127.0.0.1 only, on ports picked free at start; all state (PKI, etcd data, logs,
containerd and kubelet state, volumes) lives under one directory so `down` can remove every trace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import build, images, node, objects, pki

DEFAULT_DIR = Path(os.environ.get("DSCACHE_TESTBED_DIR", "/tmp/dscache-testbed"))
# The node is named by its address: the kubelet takes an IP hostname as its InternalIP (see node.py).
NODE_NAME = "127.0.0.1"
# ClusterIPs come from a loopback range so the service proxy can bind them: webhook and
# aggregated-API calls through a Service then work without routing anything off this host.
SERVICE_CIDR = "127.200.0.0/16"
PROCESSES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "service-proxy",
    "local-path-provisioner",
)


@dataclass
class State:
    """What `up` started, persisted as state.json so other commands and test sessions can find it."""

    root: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return Path(self.root) / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _state_path(root: Path) -> Path:
    return root / "state.json"


def load_state(root: Path) -> State | None:
    try:
        data = json.loads(_state_path(root).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return State(**data)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _kubeconfig(path: Path, server: str, ca: Path, pair: pki.KeyPair, user: str) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "testbed", "cluster": {"server": server, "certificate-authority": str(ca)}}
                ],
                "users": [
                    {
                        "name": user,
                        "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
                    }
                ],
                "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": user}}],
                "current-context": "testbed",
            },
            indent=2,
        )
    )
    path.chmod(0o600)


def _make_pki(root: Path, state: State) -> None:
    d = root / "pki"
    d.mkdir(parents=True)
    ca = pki.make_ca(d)
    pki.make_service_account_keys(d)
    pki.issue(
        ca,
        d,
        "apiserver",
        "kube-apiserver",
        server=True,
        dns_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ips=("127.0.0.1", "127.200.0.1"),
    )
    pki.issue(
        ca,
        d,
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        organizations=("system:masters",),
        client=True,
    )
    # Front proxy (request-header authentication) for aggregated API servers, as kubeadm sets it up.
    fp = pki.make_ca(d, "front-proxy-ca")
    pki.issue(fp, d, "front-proxy-client", "front-proxy-client", client=True)
    pki.issue(
        ca,
        d,
        "kubelet",
        f"system:node:{NODE_NAME}",
        server=True,
        dns_names=("localhost",),
        ips=(NODE_NAME,),
    )
    users = {
        "admin": ("testbed-admin", ("system:masters",)),
        "controller-manager": ("system:kube-controller-manager", ()),
        "scheduler": ("system:kube-scheduler", ()),
        "node": (f"system:node:{NODE_NAME}", ("system:nodes",)),
    }
    for name, (cn, groups) in users.items():
        pair = pki.issue(ca, d, name, cn, organizations=groups, client=True)
        path = root / "kubeconfig" if name == "admin" else root / f"{name}.kubeconfig"
        _kubeconfig(path, state.server, ca.cert, pair, cn)


def _spawn(root: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    log = open(root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=root,
        env=env,
    )
    log.close()
    return proc.pid


def _ssl_context(root: Path, user: str = "admin") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(root / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(root / "pki" / f"{user}.crt"), str(root / "pki" / f"{user}.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()
    except (OSError, ssl.SSLError):
        return 0, b""


def _wait(what: str, check: Any, state: State, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, pid in state.pids.items():
            if not _alive(pid):
                log = Path(state.root) / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"{name} exited while waiting for {what}; log tail:\n{tail}")
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"test bed: timed out after {timeout:.0f}s waiting for {what}")


API_SERVICE = ("127.200.0.1", 443)
"""Where the service proxy serves `default/kubernetes` (the first address of SERVICE_CIDR)."""


def _wait_for_service_range(timeout: float = 90.0) -> None:
    """Wait until no other bed's service proxy listens on API_SERVICE (one being taken down lets go
    within seconds). Two beds on one machine share the loopback service range: the second one's proxy
    could not bind, and its pods' in-cluster clients would reach the first bed's API server (a TLS
    failure at best). Raises RuntimeError naming the address when it stays taken."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(API_SERVICE) != 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"test bed: {API_SERVICE[0]}:{API_SERVICE[1]} is served by another process, most "
                "likely another bed's service proxy (beds share the service range): take that bed "
                "down (hack/testbed down --dir DIR) first"
            )
        time.sleep(1.0)


def up(root: Path = DEFAULT_DIR, *, timeout: float = 120.0) -> State:
    """Start a bed in the background (or return the one already running there) once it is ready."""
    root = root.resolve()
    existing = load_state(root)
    if existing and all(_alive(existing.pids.get(p, 0) or 0) for p in PROCESSES):
        return existing
    if existing:
        down(root)
    _wait_for_service_range()
    build.ensure_all()
    built = images.ensure_images()
    if root.exists():
        shutil.rmtree(root)
    (root / "logs").mkdir(parents=True)
    names = (
        "etcd",
        "etcd-peer",
        "apiserver",
        "controller-manager",
        "scheduler",
        "kubelet",
        "kubelet-healthz",
    )
    ports = {k: _free_port() for k in names}
    state = State(root=str(root), ports=ports)
    _make_pki(root, state)
    (root / "admission.json").write_text(json.dumps(objects.pod_security_admission_config()))
    p = root / "pki"
    bin_ = build.binary
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    state.pids["etcd"] = _spawn(
        root,
        "etcd",
        [
            str(bin_("etcd")),
            "--name=testbed",
            f"--data-dir={root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=testbed={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )
    _save(root, state)
    _wait("etcd", lambda: _get(f"{etcd_url}/health")[0] == 200, state, 30)
    state.pids["kube-apiserver"] = _spawn(
        root,
        "kube-apiserver",
        [
            str(bin_("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--admission-control-config-file={root / 'admission.json'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
            "--profiling=false",
            "--v=1",
        ],
    )
    _save(root, state)
    ctx = _ssl_context(root)
    _wait("kube-apiserver /readyz", lambda: _get(f"{state.server}/readyz", ctx)[0] == 200, state, 90)
    kcm_cfg = str(root / "controller-manager.kubeconfig")
    state.pids["kube-controller-manager"] = _spawn(
        root,
        "kube-controller-manager",
        [
            str(bin_("kube-controller-manager")),
            f"--kubeconfig={kcm_cfg}",
            f"--authentication-kubeconfig={kcm_cfg}",
            f"--authorization-kubeconfig={kcm_cfg}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            f"--cert-dir={root / 'kcm-certs'}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
            "--cluster-name=testbed",
            "--profiling=false",
            "--v=1",
        ],
    )
    sched_cfg = str(root / "scheduler.kubeconfig")
    state.pids["kube-scheduler"] = _spawn(
        root,
        "kube-scheduler",
        [
            str(bin_("kube-scheduler")),
            f"--kubeconfig={sched_cfg}",
            f"--authentication-kubeconfig={sched_cfg}",
            f"--authorization-kubeconfig={sched_cfg}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ],
    )
    _save(root, state)
    _apply(root, [*objects.node_policy(), *objects.storage_objects(root / "pv")])
    node.prepare(root, ports["kubelet"], ports["kubelet-healthz"])
    state.pids["containerd"] = _spawn(root, "containerd", node.containerd_argv(root), env=node.env())
    _save(root, state)
    node.wait_containerd(root)
    node.load_images(root, built)
    state.pids["kubelet"] = _spawn(
        root, "kubelet", node.kubelet_argv(bin_("kubelet"), root, NODE_NAME), env=node.env()
    )
    _save(root, state)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(build.HACK), env.get("PYTHONPATH", "")]))
    state.pids["service-proxy"] = _spawn(
        root, "service-proxy", [sys.executable, "-m", "dscache_testbed.proxy", f"--dir={root}"], env=env
    )
    state.pids["local-path-provisioner"] = _spawn(root, "local-path-provisioner", _provisioner_argv(root))
    _save(root, state)
    kcm = f"https://127.0.0.1:{ports['controller-manager']}/healthz"
    insecure = ssl._create_unverified_context()  # KCM serves a self-signed cert; only /healthz
    _wait("kube-controller-manager /healthz", lambda: _get(kcm, insecure)[0] == 200, state, 60)
    _wait(
        "the default ServiceAccount (serviceaccount controller)",
        lambda: _get(f"{state.server}/api/v1/namespaces/default/serviceaccounts/default", ctx)[0] == 200,
        state,
        60,
    )
    _wait("node Ready", lambda: _node_ready(state, ctx), state, 60)
    return state


def _apply(root: Path, objs: list[dict[str, Any]]) -> None:
    """Create the bed's own cluster objects (kubectl apply of a List) as its admin."""
    subprocess.run(
        [str(build.binary("kubectl")), f"--kubeconfig={root / 'kubeconfig'}", "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}),
        text=True,
        check=True,
        capture_output=True,
    )


def _provisioner_argv(root: Path) -> list[str]:
    d = root / "provisioner"
    (root / "pv").mkdir(exist_ok=True)
    d.mkdir()
    (d / "config.json").write_text(json.dumps(objects.provisioner_config(root / "pv")))
    (d / "helperPod.yaml").write_text(json.dumps(objects.helper_pod()))
    return [
        str(build.binary("local-path-provisioner")),
        "start",
        f"--kubeconfig={root / 'kubeconfig'}",
        f"--namespace={objects.PROVISIONER_NAMESPACE}",
        f"--service-account-name={objects.PROVISIONER_SA}",
        f"--configmap-name={objects.PROVISIONER_CONFIGMAP}",
        f"--config={d / 'config.json'}",
        f"--helper-pod-file={d / 'helperPod.yaml'}",
        f"--helper-image={images.SHELL_REF}",
        f"--provisioner-name={objects.PROVISIONER_NAME}",
    ]


def _node_ready(state: State, ctx: ssl.SSLContext) -> bool:
    code, body = _get(f"{state.server}/api/v1/nodes/{NODE_NAME}", ctx)
    if code != 200:
        return False
    conds = json.loads(body).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _save(root: Path, state: State) -> None:
    tmp = _state_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.rename(_state_path(root))


def _mentions(pid: int, proc_file: str, needle: str) -> bool:
    """Whether /proc/<pid>/<proc_file> names the bed dir: never signal a recycled, unrelated pid."""
    try:
        return needle.encode() in Path(f"/proc/{pid}/{proc_file}").read_bytes()
    except OSError:
        return False


def _stop(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def down(root: Path = DEFAULT_DIR, *, keep: bool = False) -> None:
    """Stop every process of the bed (the node's containers first) and remove its files."""
    root = root.resolve()
    state = load_state(root)
    if state:
        for name in reversed(PROCESSES):
            pid = state.pids.get(name)
            if name == "containerd":
                node.stop_containers(root)  # the kubelet, stopped before, leaves its containers
            if pid and _mentions(pid, "cmdline", str(root)):
                _stop(pid, 5.0)
    for pid in node.shim_pids(root):  # each shim reaps its container's processes on SIGKILL of them
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if not keep and root.exists():
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Mounts live in per-container namespaces, but unmount defensively before deleting files."""
    with open("/proc/self/mounts") as fh:
        targets = [line.split()[1] for line in fh if line.split()[1].startswith(str(root) + "/")]
    for t in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", t], check=False)


def status(root: Path = DEFAULT_DIR) -> dict[str, Any]:
    """Liveness of each process plus API readiness, for `hack/testbed status` and fixtures."""
    root = root.resolve()
    state = load_state(root)
    if state is None:
        return {"dir": str(root), "running": False}
    procs = {name: _alive(pid) for name, pid in state.pids.items()}
    ready = False
    if procs.get("kube-apiserver"):
        ready = _get(f"{state.server}/readyz", _ssl_context(root))[0] == 200
    return {
        "dir": str(root),
        "running": all(procs.get(p, False) for p in PROCESSES),
        "apiserver_ready": ready,
        "processes": procs,
        "ports": state.ports,
        "kubeconfig": str(state.kubeconfig),
        "server": state.server,
    }


def env_lines(state: State) -> list[str]:
    path = os.pathsep.join([str(build.kubectl_bin_dir()), str(build.helm_bin_dir())])
    return [f"export KUBECONFIG={state.kubeconfig}", f'export PATH="{path}:$PATH"']
