"""The API module's interface: Kube and the tests' fake both implement KubeApi, and the fake answers
as the API server does for the calls the reconciler makes."""

from __future__ import annotations

import asyncio
import inspect

from dscache_operator.kube import Kube
from dscache_operator.kubeapi import KubeApi
from tests.dscache_operator.fakekube import FakeKube, merge_patch

METHODS = ("get", "list", "create", "patch", "patch_status", "delete")


def test_kube_and_the_fake_have_the_protocols_signatures() -> None:
    """mypy checks the fake against KubeApi (fakekube.as_api); this also runs where mypy does not."""
    for name in METHODS:
        want = inspect.signature(getattr(KubeApi, name))
        assert inspect.signature(getattr(Kube, name)) == want, name
        assert inspect.signature(getattr(FakeKube, name)) == want, name
        assert inspect.iscoroutinefunction(getattr(Kube, name)), name


def job(name: str, **labels: str) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "ml", "labels": labels},
    }


def test_the_fake_creates_lists_patches_and_deletes_like_the_api_server() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        jobs = "/apis/batch/v1/namespaces/ml/jobs"
        assert await kube.create(job("a", app="x", tier="1")) is True
        assert await kube.create(job("a")) is False  # 409: the existing one stays
        assert await kube.create(job("b", app="y")) is True
        names = [
            [j["metadata"]["name"] for j in await kube.list(jobs, s)]
            for s in ("", "app=x", "app!=x", "tier", "!tier")
        ]
        assert names == [["a", "b"], ["a"], ["b"], ["a"], ["b"]]
        assert await kube.list("/apis/batch/v1/namespaces/other/jobs") == []
        assert await kube.get(f"{jobs}/missing") is None
        patched = await kube.patch(f"{jobs}/a", {"metadata": {"labels": {"tier": None, "new": "1"}}})
        assert patched is not None and patched["metadata"]["labels"] == {"app": "x", "new": "1"}
        assert await kube.patch(f"{jobs}/missing", {"x": 1}) is None
        got = await kube.get(f"{jobs}/a")
        assert got is not None
        got["metadata"]["name"] = "changed"  # reads are copies
        assert (await kube.get(f"{jobs}/a") or {})["metadata"]["name"] == "a"
        await kube.delete(f"{jobs}/a")
        await kube.delete(f"{jobs}/a")  # already gone: no error
        assert [w.verb for w in kube.writes] == [
            "create",
            "create",
            "create",
            "patch",
            "patch",
            "delete",
            "delete",
        ]

    asyncio.run(scenario())


def test_the_status_subresource_changes_only_the_status() -> None:
    async def scenario() -> None:
        kube = FakeKube()
        kube.put({"kind": "DatasetCache", "metadata": {"name": "c", "namespace": "ml"}, "spec": {"a": 1}})
        await kube.patch(
            "/apis/dscache.io/v1alpha1/namespaces/ml/datasetcaches/c/status",
            {"spec": {"a": 2}, "status": {"phase": "Ready"}},
        )
        await kube.patch_status("ml", "c", {"message": "m"})
        stored = kube.obj("/apis/dscache.io/v1alpha1/namespaces/ml/datasetcaches/c")
        assert stored["spec"] == {"a": 1} and stored["status"] == {"phase": "Ready", "message": "m"}

    asyncio.run(scenario())


def test_merge_patch_follows_rfc_7386() -> None:
    # Examples from RFC 7386, appendix A.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": "foo"}, "bar") == "bar"
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
