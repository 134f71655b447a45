"""The object the cluster-test fixtures hand to tests: a running bed and the pinned clients."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import node
from .kube import Kube


@dataclass
class Testbed:
    """A running bed: where it is, how to reach it, and the pinned client binaries."""

    __test__ = False  # not a test class, despite the name

    root: Path
    kubeconfig: Path
    kube: Kube
    kubectl_bin: Path
    helm_bin: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against the bed as its admin; raise with stderr on failure."""
        proc = subprocess.run(
            [str(self.kubectl_bin), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def get(self, path: str) -> dict[str, Any] | None:
        return self.kube.get_or_none(path)

    def wait_for(self, what: str, fn: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll fn until it returns something truthy; fail with `what` and the last value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")

    def logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A container's output as `kubectl logs` gives it (the kubelet's); without `container`,
        every container's, init containers included, each line prefixed with its container."""
        if container:
            return self.kubectl("logs", "-n", namespace, pod, "-c", container).stdout
        spec = self.kube.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")["spec"]
        out = []
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            got = self.kubectl("logs", "-n", namespace, pod, "-c", c["name"], check=False)
            if got.returncode == 0:  # else it has not started: no output yet
                out += [f"[{c['name']}] {line}" for line in got.stdout.splitlines()]
        return "\n".join(out)

    def container_pid(self, container_id: str) -> int | None:
        """The host pid of a running container (`containerd://<id>` from a pod's status), or None."""
        listing = subprocess.run(
            ["ctr", f"--address={node.containerd_socket(self.root)}", "--namespace=k8s.io", "tasks", "ls"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wanted = container_id.removeprefix("containerd://")
        for line in listing.splitlines()[1:]:
            task, pid, status = line.split()
            if task == wanted and status == "RUNNING":
                return int(pid)
        return None
