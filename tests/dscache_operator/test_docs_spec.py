"""README's spec reference covers every field of the CRD's spec, names no field the CRD lacks, and
says what the code does where a newcomer found it saying otherwise (install.verify and SSE-KMS)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dscache.remotes.s3 import vouched_md5
from dscache_operator.crd import render

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "# spec reference\n"
MD5_ETAG = '"9e107d9d372bb6826bd81d3542a419d6"'


def crd_spec() -> dict[str, Any]:
    schema = yaml.safe_load(render())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec: dict[str, Any] = schema["properties"]["spec"]
    return spec


def schema_paths(node: dict[str, Any], path: str = "") -> set[str]:
    """Dotted paths of the schema's leaves; a list of objects adds `[]` (`versions[].dataType`)."""
    if node.get("type") == "array" and "properties" in node.get("items", {}):
        return schema_paths(node["items"], path + "[]")
    if "properties" not in node:
        return {path}
    return {
        p for key, sub in node["properties"].items() for p in schema_paths(sub, f"{path}.{key}".lstrip("."))
    }


def value_paths(value: Any, path: str = "") -> set[str]:
    """The same paths of a YAML example (a list's first item stands for all)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value_paths(value[0], path + "[]")
    if not isinstance(value, dict) or not value:
        return {path}
    return {p for key, sub in value.items() for p in value_paths(sub, f"{path}.{key}".lstrip("."))}


def readme_reference() -> dict[str, Any]:
    text = README.read_text()
    [block] = [b for b in re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M) if b.startswith(MARKER)]
    spec: dict[str, Any] = yaml.safe_load(block)["spec"]
    return spec


def within(a: str, b: str) -> bool:
    """`a` is `b` or lies below it (`install.resources.requests` within `install.resources`)."""
    return a == b or a.startswith((b + ".", b + "[]"))


def test_readme_spec_reference_lists_every_crd_field_and_no_other() -> None:
    crd, readme = schema_paths(crd_spec()), value_paths(readme_reference())
    missing = sorted(c for c in crd if not any(within(c, r) or within(r, c) for r in readme))
    assert not missing, f"README's spec reference lacks {missing}"
    unknown = sorted(r for r in readme if not any(within(c, r) or within(r, c) for c in crd))
    assert not unknown, f"README's spec reference names fields the CRD does not have: {unknown}"


def schema_defaults(node: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Path -> default of every schema node that states one."""
    found = {path: node["default"]} if "default" in node else {}
    if node.get("type") == "array" and "properties" in node.get("items", {}):
        found |= schema_defaults(node["items"], path + "[]")
    for key, sub in node.get("properties", {}).items():
        found |= schema_defaults(sub, f"{path}.{key}".lstrip("."))
    return found


def value_at(doc: Any, path: str) -> Any:
    """The value at a dotted path of the README example (`[]`: a list's first item)."""
    for part in path.split("."):
        doc = doc[part.removesuffix("[]")][0] if part.endswith("[]") else doc[part]
    return doc


def test_readme_spec_reference_shows_the_crd_defaults() -> None:
    readme = readme_reference()
    defaults = schema_defaults(crd_spec())
    assert defaults, "the CRD states defaults"
    wrong = {p: (value_at(readme, p), d) for p, d in defaults.items() if value_at(readme, p) != d}
    assert not wrong, f"README value, CRD default: {wrong}"


def test_the_fields_a_newcomer_missed_are_in_the_reference() -> None:
    readme = readme_reference()
    assert readme["install"]["verify"] is True
    assert "maxBytes" in readme["scratch"]["hostPath"]


def test_verify_is_described_as_the_s3_remote_treats_sse_kms() -> None:
    # the code: an SSE-KMS (or SSE-C) object's ETag is never taken for an MD5; SSE-S3's is
    assert vouched_md5(
        MD5_ETAG, {"x-amz-server-side-encryption": "aws:kms"}, aws=True, directory_bucket=False
    ) == (
        None,
        False,
    )
    assert vouched_md5(
        MD5_ETAG, {"x-amz-server-side-encryption": "AES256"}, aws=True, directory_bucket=False
    ) == (
        MD5_ETAG.strip('"'),
        True,
    )
    description = " ".join(crd_spec()["properties"]["install"]["properties"]["verify"]["description"].split())
    assert "Turn off for SSE-KMS" not in description
    assert "SSE-KMS, SSE-C and multipart ETags are recognised and never taken for MD5s" in description
    readme = " ".join(README.read_text().split())
    assert (
        "SSE-KMS, SSE-C and multipart ETags are recognised from each answer's headers and never taken"
        in readme
    )


def test_host_path_budget_is_an_int_or_string_quantity_in_the_crd() -> None:
    host_path = crd_spec()["properties"]["scratch"]["properties"]["hostPath"]["properties"]
    assert host_path["maxBytes"]["x-kubernetes-int-or-string"] is True
    assert host_path["maxBytes"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert re.match(host_path["maxBytes"]["pattern"], "500Gi")
    assert not re.match(host_path["maxBytes"]["pattern"], "-1Gi")
