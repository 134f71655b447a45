"""Fixtures for the operator's cluster tests: CRDs applied, the real operator as a process, an S3 remote.

Import the fixtures into a test module with `from tests.cluster.operator_fixtures import *`-style
explicit imports; they build on `testbed`/`namespace` from conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dscache_testbed import images
from dscache_testbed.fixtures import Testbed
from dscache_testbed.kube import ApiError

from dscache.api.names import VersionKey
from tests.factories import make_tree, publish_archives
from tests.servers.s3 import S3Env

ROOT = Path(__file__).resolve().parents[2]
IMAGE = images.project_ref()  # the chart's default reference, under which the bed loads the image
PREPARE_IMAGE = images.prepare_ref()  # the init-container image (the Dockerfile's prepare target)
DSC = "/apis/dscache.io/v1alpha1"
HOOKS = "/apis/admissionregistration.k8s.io/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_url(testbed: Testbed) -> str:
    kubeconfig = yaml.safe_load(testbed.kubeconfig.read_text())
    return str(kubeconfig["clusters"][0]["cluster"]["server"])


@dataclass
class Operator:
    """A `dscache-operator run` process against the bed, its JSON log in `log_path`."""

    log_path: Path
    args: list[str]
    health_port: int
    metrics_port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> Operator:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                "dscache-operator",
                "run",
                *self.args,
                "--liveness",
                f"http://127.0.0.1:{self.health_port}/healthz",
                "--metrics-port",
                str(self.metrics_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def healthy(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())


@pytest.fixture(scope="session")
def crds(testbed: Testbed) -> None:
    """The DatasetCache CRD (the committed file) and kopf's peering CRDs, established."""
    for name in ("datasetcache.yaml", "kopf-peering.yaml"):
        testbed.kubectl("apply", "-f", str(ROOT / "crds" / name))
    for crd in ("datasetcaches.dscache.io", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        testbed.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    testbed.wait_for(
        "DatasetCache served",
        lambda: testbed.kubectl("get", "dsc", "-A", check=False).returncode == 0,
    )


OperatorFactory = Callable[..., Operator]


@pytest.fixture
def start_operator(testbed: Testbed, crds: None, namespace: str, tmp_path: Path) -> Iterator[OperatorFactory]:
    """Start operators watching the test's namespace; all are stopped at the end of the test."""
    started: list[Operator] = []

    def start(*extra: str, name: str = "operator") -> Operator:
        env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig)}
        op = Operator(
            log_path=tmp_path / f"{name}-{len(started)}.log",
            args=[
                "--namespace",
                namespace,
                "--image",
                IMAGE,
                "--prepare-image",
                PREPARE_IMAGE,
                "--installer-api-url",
                api_url(testbed),
                "--peering",
                f"dscache-{namespace}",
                *extra,
            ],
            health_port=free_port(),
            metrics_port=free_port(),
            env=env,
        ).start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


@dataclass
class Remote:
    """A molmospaces/dscache remote in a moto bucket, with the credentials Secret for it."""

    s3: S3Env
    prefix: str
    published: dict[str, int] = field(default_factory=dict)  # "dt/src=ver" -> bytes

    def publish(self, tmp: Path, key: VersionKey, files: dict[str, int]) -> None:
        tree = make_tree(tmp / "trees" / key.rel, files)
        remote = tmp / "remote"
        result = publish_archives(tree, remote, key, archive_size=64 * 1024)
        for path in sorted(p for p in remote.rglob("*") if p.is_file()):
            self.s3.put(f"{self.prefix}/{path.relative_to(remote).as_posix()}", path.read_bytes())
        self.published[str(key)] = result.bytes


def s3_source(s3: S3Env, prefix: str, secret: str = "s3-creds") -> dict[str, Any]:
    return {
        "s3": {
            "bucket": s3.bucket,
            "prefix": prefix,
            "endpoint": s3.endpoint,
            "region": "us-east-1",
            "secretRef": {"name": secret},
        }
    }


def create_secret(testbed: Testbed, namespace: str, key_id: str, secret: str, name: str = "s3-creds") -> None:
    testbed.kube.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "metadata": {"name": name},
            "stringData": {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret},
        },
    )


def datasetcache(name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "dscache.io/v1alpha1",
            "kind": "DatasetCache",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def get_dsc(testbed: Testbed, namespace: str, name: str) -> dict[str, Any] | None:
    return testbed.get(f"{DSC}/namespaces/{namespace}/datasetcaches/{name}")


def wait_phase(
    testbed: Testbed,
    namespace: str,
    name: str,
    phase: str,
    timeout: float = 120,
    generation: int | None = None,
) -> dict[str, Any]:
    """Wait for `phase` (computed for `generation`, if given) and return the resource."""

    def reached() -> dict[str, Any] | None:
        body = get_dsc(testbed, namespace, name) or {}
        status = body.get("status", {})
        if generation is not None and status.get("observedGeneration") != generation:
            return None
        return body if status.get("phase") == phase else None

    try:
        return dict(testbed.wait_for(f"{name} {phase}", reached, timeout=timeout))
    except AssertionError:
        body = get_dsc(testbed, namespace, name)
        raise AssertionError(
            f"{name} not {phase}: {json.dumps((body or {}).get('status'), indent=1)}"
        ) from None


def installer_jobs(testbed: Testbed, namespace: str, cache: str | None = None) -> list[dict[str, Any]]:
    selector = "dscache.io/component=installer" + (f",dscache.io/cache={cache}" if cache else "")
    return list(
        testbed.kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs", labelSelector=selector)["items"]
    )


def claim_dir(testbed: Testbed, namespace: str, claim: str) -> Path:
    """The host directory behind a bound claim (the bed's provisioner puts PVs under DIR/pv/)."""
    pvc = testbed.wait_for(
        f"pvc {claim} bound",
        lambda: (
            (p := testbed.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"))
            and p.get("status", {}).get("phase") == "Bound"
            and p
        ),
    )
    pv = testbed.kube.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
    return Path(pv["spec"]["hostPath"]["path"])


@contextlib.contextmanager
def dev_webhook_operator(
    testbed: Testbed, namespace: str, start_operator: OperatorFactory, *flags: str, wait: Callable[[], None]
) -> Iterator[Operator]:
    """The operator in dev mode (generated CA, URL webhook configurations named after its peering) on
    a free port, with `flags`, once `wait` returns (webhook configurations apply asynchronously). On
    exit it is stopped and its webhook configurations are deleted."""
    op = start_operator("--webhook-dev", "--webhook-port", str(free_port()), *flags)
    wait()
    try:
        yield op
    finally:
        op.stop()
        for kind in ("mutating", "validating"):
            with contextlib.suppress(ApiError):
                testbed.kube.delete(f"{HOOKS}/{kind}webhookconfigurations/dscache-{namespace}.dscache.io")
