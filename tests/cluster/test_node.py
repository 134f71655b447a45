"""The bed's node is real: containerd and runc enforce what a pod's securityContext asks for."""

from __future__ import annotations

from typing import Any

import pytest
from dscache_testbed.fixtures import Testbed

pytestmark = pytest.mark.cluster

HARDENED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _run(
    testbed: Testbed,
    namespace: str,
    name: str,
    script: str,
    pod_security: dict[str, Any],
    security: dict[str, Any],
) -> dict[str, Any]:
    pod = {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pod_security,
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "command": ["sh", "-c", script],
                    "securityContext": security,
                }
            ],
        },
    }
    testbed.kube.post(f"/api/v1/namespaces/{namespace}/pods", pod)
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    return dict(
        testbed.wait_for(
            f"pod {name} finished",
            lambda: (p := testbed.get(path)) and p["status"].get("phase") in ("Succeeded", "Failed") and p,
        )
    )


NON_ROOT = {"runAsUser": 4321, "runAsGroup": 4321, "runAsNonRoot": True}


def test_pod_runs_as_its_user_and_cannot_write_its_read_only_root(testbed: Testbed, namespace: str) -> None:
    # One stream: the kubelet keeps stdout and stderr apart, so their lines may interleave either way.
    pod = _run(testbed, namespace, "ro", "exec 2>&1; id -u; id -g; echo x > /probe", NON_ROOT, HARDENED)
    assert pod["status"]["phase"] == "Failed"
    assert testbed.logs(namespace, "ro", "main").splitlines() == [
        "4321",
        "4321",
        "sh: can't create /probe: Read-only file system",
    ]
    writable = _run(testbed, namespace, "rw", "echo x > /tmp/probe && cat /tmp/probe", NON_ROOT, {})
    assert writable["status"]["phase"] == "Succeeded"  # the image's /tmp, when the root is writable


def test_capabilities_and_seccomp_are_applied(testbed: Testbed, namespace: str) -> None:
    """The container process's effective capabilities and seccomp mode: none and a filter (2) with
    `drop: [ALL]` and RuntimeDefault; containerd's default set and no filter (0) without them."""
    script = "grep -E '^(CapEff|Seccomp):' /proc/self/status"
    _run(testbed, namespace, "dropped", script, NON_ROOT, HARDENED)
    _run(testbed, namespace, "default", script, {}, {})
    assert testbed.logs(namespace, "dropped", "main").split() == [
        "CapEff:",
        "0000000000000000",
        "Seccomp:",
        "2",
    ]
    # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT
    # MKNOD AUDIT_WRITE SETFCAP
    assert testbed.logs(namespace, "default", "main").split() == [
        "CapEff:",
        "00000000a80425fb",
        "Seccomp:",
        "0",
    ]
