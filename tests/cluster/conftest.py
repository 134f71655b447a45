"""Fixtures for tests against the local Kubernetes test bed (hack/testbed).

Session scope: reuse the bed running in $DSCACHE_TESTBED_DIR, or else in /tmp/dscache-testbed (where
`hack/testbed up` puts it); otherwise bring one up for this session only (in $DSCACHE_TESTBED_DIR,
or a fresh /tmp/dscache-testbed-* dir so concurrent sessions never share or stop each other's bed)
and take it down at the end (DSCACHE_TESTBED_KEEP=1 leaves it running). Each test gets a fresh
namespace.

Cluster tests never skip silently: if the bed cannot start they fail. For a local run without the
bed set DSCACHE_SKIP_CLUSTER_TESTS=1; it is refused when CI is set.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack"
if str(HACK) not in sys.path:
    sys.path.insert(0, str(HACK))

from dscache_testbed import bed, build  # noqa: E402
from dscache_testbed.fixtures import Testbed  # noqa: E402
from dscache_testbed.kube import ApiError, Kube  # noqa: E402

SKIP_ENV = "DSCACHE_SKIP_CLUSTER_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SKIP_ENV) != "1":
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"{SKIP_ENV}=1 is for local runs only; CI must run the cluster tests")
    skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1 (local opt-out)")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    env_dir = os.environ.get("DSCACHE_TESTBED_DIR")
    root = Path(env_dir or "/tmp/dscache-testbed").resolve()
    info = bed.status(root)
    started = False
    if not (info.get("running") and info.get("apiserver_ready")):
        if not env_dir:
            root = Path(tempfile.mkdtemp(prefix="dscache-testbed-", dir="/tmp"))
        names = (*build.K8S_BINARIES, "local-path-provisioner", "kubectl", "helm")
        missing = [b for b in names if not build.binary(b).exists()]
        if missing:  # a cold build takes minutes: do it outside the per-test timeout
            pytest.fail(
                f"test bed binaries not built ({', '.join(missing)}): run `hack/testbed build` "
                "or .ci/testbed.sh first"
            )
        bed.up(root)
        started = True
    state = bed.load_state(root)
    assert state is not None
    tb = Testbed(
        root=root,
        kubeconfig=state.kubeconfig,
        kube=Kube(root, "admin", state.ports["apiserver"]),
        kubectl_bin=build.binary("kubectl"),
        helm_bin=build.binary("helm"),
    )
    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(state.kubeconfig)
    try:
        yield tb
    finally:
        if old is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = old
        if started and os.environ.get("DSCACHE_TESTBED_KEEP") != "1":
            bed.down(root)


@pytest.fixture
def namespace(testbed: Testbed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    testbed.kube.post("/api/v1/namespaces", {"metadata": {"name": name, "labels": {"dscache-test": "true"}}})
    # Pods need the namespace's default ServiceAccount (made by the serviceaccount controller).
    testbed.wait_for(
        "default ServiceAccount", lambda: testbed.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
    )
    yield name
    with contextlib.suppress(ApiError):
        testbed.kube.delete(f"/api/v1/namespaces/{name}")
