"""The bed's node: containerd (Debian's 1.6 with runc), the upstream kubelet, and what they need.

Everything lives under `DIR/node/`: containerd's config, root, state and socket; the kubelet's root
dir, config and pod logs; the CNI config. Nothing is written to the host's default locations
(/var/lib/containerd, /var/lib/kubelet, /var/log/pods, /etc/cni), so several beds can run at once.

Settings this machine needs (measured; see hack/README.md): cgroup v1 hierarchy, so the kubelet
runs with `failCgroupV1: false` and the cgroupfs driver (containerd 1.6 has no RuntimeConfig RPC,
the kubelet falls back to its own `cgroupDriver`); root lacks CAP_SYS_RESOURCE, so containerd's CRI
plugin must not lower `oom_score_adj` (`restrict_oom_score_adj`); no registry is reachable, so the
sandbox image is a local one and image garbage collection is off (a removed image cannot come back).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .images import PAUSE_REF, Image

CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins


def node_dir(root: Path) -> Path:
    return root / "node"


def containerd_socket(root: Path) -> Path:
    return node_dir(root) / "containerd" / "containerd.sock"


def containerd_config(root: Path) -> str:
    """containerd 1.6 config (version 2) with every path under the bed and the CRI plugin's needs."""
    d = node_dir(root) / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join(
        [
            "version = 2",
            f'root = "{d / "root"}"',
            f'state = "{d / "state"}"',
            'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",'
            ' "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
            "[grpc]",
            f'  address = "{containerd_socket(root)}"',
            "[ttrpc]",
            f'  address = "{d / "containerd.sock.ttrpc"}"',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{d / "opt"}"',
            f"[{cri}]",
            f'  sandbox_image = "{PAUSE_REF}"',
            "  restrict_oom_score_adj = true",
            "  enable_selinux = false",
            f"[{cri}.cni]",
            f'  bin_dir = "{CNI_BIN_DIR}"',
            f'  conf_dir = "{node_dir(root) / "cni"}"',
            f"[{cri}.containerd]",
            '  default_runtime_name = "runc"',
            f"[{cri}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            "",
        ]
    )


def cni_config() -> dict[str, Any]:
    """Loopback only: every pod is on the host network (bed admission policy), none needs an IP;
    a config must exist for the runtime to report NetworkReady, without which the node is NotReady."""
    return {"cniVersion": "0.4.0", "name": "testbed-loopback", "plugins": [{"type": "loopback"}]}


def kubelet_config(root: Path, port: int, healthz_port: int) -> dict[str, Any]:
    pki = root / "pki"
    d = node_dir(root)
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        "authentication": {
            "x509": {"clientCAFile": str(pki / "ca.crt")},
            "webhook": {"enabled": False},
            "anonymous": {"enabled": False},
        },
        "authorization": {"mode": "AlwaysAllow"},  # x509 only: the API server's kubelet-client cert
        "containerRuntimeEndpoint": f"unix://{containerd_socket(root)}",
        "imageServiceEndpoint": f"unix://{containerd_socket(root)}",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "resolvConf": "",
        "podLogsDir": str(d / "pod-logs"),
        "volumePluginDir": str(d / "volume-plugins"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": False,
    }


def prepare(root: Path, kubelet_port: int, healthz_port: int) -> None:
    """Write containerd's, the CNI and the kubelet's configuration under DIR/node."""
    d = node_dir(root)
    for sub in ("containerd", "cni", "kubelet", "pod-logs", "volume-plugins"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "containerd" / "config.toml").write_text(containerd_config(root))
    (d / "cni" / "10-loopback.conflist").write_text(json.dumps(cni_config(), indent=2))
    (d / "kubelet" / "config.json").write_text(json.dumps(kubelet_config(root, kubelet_port, healthz_port)))


def containerd_argv(root: Path) -> list[str]:
    return ["containerd", f"--config={node_dir(root) / 'containerd' / 'config.toml'}", "--log-level=warn"]


def kubelet_argv(kubelet: Path, root: Path, node_name: str) -> list[str]:
    d = node_dir(root)
    return [
        str(kubelet),
        f"--config={d / 'kubelet' / 'config.json'}",
        f"--kubeconfig={root / 'node.kubeconfig'}",
        f"--root-dir={d / 'kubelet'}",
        # An IP as the hostname makes it the node's InternalIP without the check that refuses a
        # loopback --node-ip: pods on the host network then report 127.0.0.1, the only address
        # anything on this machine may be reached at.
        f"--hostname-override={node_name}",
        "--v=1",
    ]


def _ctr(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", f"--address={containerd_socket(root)}", "--namespace=k8s.io", *args],
        check=True,
        capture_output=True,
        text=True,
    )


def wait_containerd(root: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if containerd_socket(root).exists():
            try:
                _ctr(root, "version")
                return
            except subprocess.CalledProcessError:
                pass
        time.sleep(0.1)
    raise TimeoutError(f"containerd did not answer on {containerd_socket(root)} within {timeout:.0f}s")


def load_images(root: Path, images: list[Image]) -> None:
    """Import each archive into containerd's k8s.io namespace and tag it under all its references."""
    for image in images:
        _ctr(root, "images", "import", "--no-unpack", str(image.archive))
        first, *others = image.refs
        for ref in others:
            _ctr(root, "images", "tag", "--force", first, ref)


def stop_containers(root: Path) -> None:
    """Kill every container task of this bed's containerd (the kubelet leaves them running on exit)."""
    if not containerd_socket(root).exists():
        return
    try:
        tasks = _ctr(root, "tasks", "ls", "--quiet").stdout.split()
    except subprocess.CalledProcessError:
        return
    for task in tasks:
        subprocess.run(
            [
                "ctr",
                f"--address={containerd_socket(root)}",
                "--namespace=k8s.io",
                "tasks",
                "kill",
                "-s",
                "SIGKILL",
                "--all",
                task,
            ],
            check=False,
            capture_output=True,
        )


def shim_pids(root: Path) -> list[int]:
    """containerd-shim processes started for this bed's containerd (their command line names its socket)."""
    sock = str(containerd_socket(root)).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmd and sock in cmd:
            pids.append(int(proc.name))
    return pids


def env() -> dict[str, str]:
    """The node processes' environment: the host's, with sbin on PATH (mount, iptables probes)."""
    e = dict(os.environ)
    e["PATH"] = ":".join([e.get("PATH", ""), "/usr/sbin", "/sbin"])
    return e
