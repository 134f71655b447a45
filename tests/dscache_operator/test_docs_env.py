"""Every variable a pod in README or examples/ reads is one the example DatasetCache it uses gives it.

The variables a cache gives are derived with `build_env` (the webhook's and `prepare`'s rule) from the
example's own YAML, so a renamed `envName` in an example breaks the docs that still use the old name.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dscache.api.envnames import build_env
from dscache.api.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
CACHE_LABEL = "dscache.io/cache"
APPLY = re.compile(r"apply\s+-f\s+examples/(datasetcache-[\w.-]+\.yaml)")
HEREDOC = re.compile(r"<<'?(\w+)'?\n(.*?)\n\1\n", re.S)
VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def cache_env(example: str) -> dict[str, str]:
    """The variables the webhook gives a pod labelled with this example's DatasetCache."""
    spec = load_manifest(EXAMPLES / example).spec
    sources = [(key, item.env_name if (item := spec.item(key)) else None) for key in spec.version_keys()]
    return build_env(PurePosixPath(spec.mount_path), sources)


def cache_name(example: str) -> str:
    return load_manifest(EXAMPLES / example).metadata.name


def pod_spec(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, spec) of a Pod, or of the pod template of a Job."""
    if doc["kind"] == "Pod":
        return doc["metadata"], doc["spec"]
    template = doc["spec"]["template"]
    return template.get("metadata") or {}, template["spec"]


def used_vars(spec: dict[str, Any]) -> set[str]:
    """The variables the containers' commands and args read."""
    words = [w for c in spec["containers"] for w in [*c.get("command", []), *c.get("args", [])]]
    return {m for w in words for m in VAR.findall(w)}


def readme_pods() -> list[tuple[str, str, dict[str, Any]]]:
    """(block text, applied example, pod doc) for each README pod that uses an example's cache."""
    found = []
    blocks = re.findall(r"^```\w*\n(.*?)^```", README.read_text(), re.S | re.M)
    for block in blocks:
        examples = APPLY.findall(block)
        for _, body in HEREDOC.findall(block + "\n"):
            for doc in yaml.safe_load_all(body):
                if not isinstance(doc, dict) or doc.get("kind") not in ("Pod", "Job"):
                    continue
                label = (pod_spec(doc)[0].get("labels") or {}).get(CACHE_LABEL)
                found += [(block, ex, doc) for ex in examples if cache_name(ex) == label]
    return found


def test_readme_pods_read_only_the_variables_their_example_cache_gives() -> None:
    pods = readme_pods()
    assert pods, "README's end-to-end example applies an example cache and a pod that uses it"
    for _, example, doc in pods:
        given = cache_env(example)
        missing = used_vars(pod_spec(doc)[1]) - set(given)
        assert not missing, f"README pod {doc['metadata']['name']} reads {missing}; {example} gives {given}"


def test_the_s3_example_names_thor_dir_and_readme_uses_it() -> None:
    # the exact case a newcomer hit: the cache sets THOR_DIR, not DSCACHE_OBJECTS_THOR
    assert cache_env("datasetcache-s3.yaml") == {
        "DSCACHE_ROOT": "/dscache",
        "THOR_DIR": "/dscache/objects/thor",
        "DSCACHE_SCENES_ITHOR": "/dscache/scenes/ithor",
    }
    [(_, _, doc)] = [p for p in readme_pods() if p[1] == "datasetcache-s3.yaml"]
    assert "THOR_DIR" in used_vars(pod_spec(doc)[1])


def test_handwritten_job_sets_what_the_webhook_would_for_its_example_cache() -> None:
    path = EXAMPLES / "training-job-handwritten.yaml"
    text = path.read_text()
    [example] = set(APPLY.findall(text))
    doc = yaml.safe_load(text)
    _, spec = pod_spec(doc)
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == f"{cache_name(example)}-dscache"
    for container in spec["containers"]:
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert env == cache_env(example), f"{path.name} {container['name']} env differs from {example}'s"
        missing = used_vars({"containers": [container]}) - set(env)
        assert not missing, f"{path.name} {container['name']} reads {missing}, which it does not set"
