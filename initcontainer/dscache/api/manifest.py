"""Where a spec comes from: a DatasetCache manifest (as `kubectl apply` takes it), a URL, CLI flags.

`dscache install -f datasetcache.yaml` accepts the very manifest a user would `kubectl apply`. Errors
are `SpecError`s naming the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dscache.api.names import NameError_, parse_version_arg
from dscache.api.resource import GROUP_VERSION, KIND
from dscache.api.spec import (
    K8S_NAME_PATTERN,
    AzureSource,
    DatasetCacheSpec,
    FileSource,
    GcsSource,
    HttpSource,
    HuggingFaceSource,
    S3Source,
    Source,
    SpecError,
    format_errors,
    parse_spec,
)

_K8S_NAME = re.compile(K8S_NAME_PATTERN)
_AZURE_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.core\.windows\.net$")


class Metadata(BaseModel):
    """The part of Kubernetes object metadata dscache uses."""

    model_config = ConfigDict(extra="ignore")
    name: str
    namespace: str = "default"

    @field_validator("name", "namespace")
    @classmethod
    def _k8s(cls, v: str) -> str:
        if not _K8S_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid Kubernetes name")
        return v


class DatasetCache(BaseModel):
    """A full DatasetCache manifest, as `kubectl apply` takes it."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    api_version: str = Field(alias="apiVersion")
    kind: Literal["DatasetCache"]
    metadata: Metadata
    spec: DatasetCacheSpec

    @field_validator("api_version")
    @classmethod
    def _api(cls, v: str) -> str:
        if v != GROUP_VERSION:
            raise ValueError(f"must be {GROUP_VERSION}")
        return v

    @property
    def ref_name(self) -> str:
        """Default ref: `<namespace>.<name>`."""
        return f"{self.metadata.namespace}.{self.metadata.name}"


def parse_manifest(doc: Any, origin: str = "manifest") -> DatasetCache:
    """Validate a DatasetCache manifest (already parsed) or raise SpecError naming the field."""
    try:
        return DatasetCache.model_validate(doc)
    except ValidationError as err:
        raise SpecError(f"{origin}: {format_errors(err, '')}") from None


def load_manifest(path: Path) -> DatasetCache:
    """Load the DatasetCache from a YAML or JSON file (the first document of that kind)."""
    import yaml  # only here: ~15 ms that an install from flags does not need

    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as err:
        raise SpecError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML/JSON: {err}") from None
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == KIND:
            return parse_manifest(doc, str(path))
    raise SpecError(f"{path}: no document with kind: {KIND}")


def _azure(url: str, account: str, path: str) -> Source:
    """An Azure source from an account and `container[/prefix]`."""
    container, _, prefix = path.strip("/").partition("/")
    if not account or not container:
        raise SpecError(f"--source {url!r}: use az://ACCOUNT/CONTAINER[/PREFIX]")
    return Source(azure=AzureSource(account=account, container=container, prefix=prefix.strip("/")))


def source_from_url(url: str) -> Source:
    """Parse a CLI source URL: s3://bucket/prefix, gs:// (or gcs://) bucket/prefix,
    az://account/container/prefix (or https://ACCOUNT.blob.core.windows.net/container/prefix),
    hf://datasets/OWNER/REPO[/PREFIX][@REV], http(s)://, file://."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "s3":
            if not parts.netloc:
                raise SpecError(f"--source {url!r}: missing bucket name")
            return Source(s3=S3Source(bucket=parts.netloc, prefix=parts.path.strip("/")))
        if parts.scheme in ("gs", "gcs"):
            if not parts.netloc:
                raise SpecError(f"--source {url!r}: missing bucket name")
            return Source(gcs=GcsSource(bucket=parts.netloc, prefix=parts.path.strip("/")))
        if parts.scheme == "az":
            return _azure(url, parts.netloc, parts.path)
        azure_host = _AZURE_HOST.match(parts.hostname or "") if parts.scheme == "https" else None
        if azure_host is not None and not parts.query and parts.username is None:
            return _azure(url, azure_host.group(1), parts.path)
        if parts.scheme == "hf":
            rest = f"{parts.netloc}{parts.path}"
            rest, _, revision = rest.partition("@")
            segs = [s for s in rest.split("/") if s]
            if len(segs) < 3 or segs[0] not in ("datasets", "models"):
                raise SpecError(f"--source {url!r}: use hf://datasets/OWNER/REPO[/PREFIX][@REVISION]")
            return Source(
                hugging_face=HuggingFaceSource(
                    repo=f"{segs[1]}/{segs[2]}",
                    repo_type="dataset" if segs[0] == "datasets" else "model",
                    prefix="/".join(segs[3:]),
                    revision=revision or "main",
                )
            )
        if parts.scheme in ("http", "https"):
            return Source(http=HttpSource(url=url.rstrip("/")))
        if parts.scheme == "file":
            return Source(file=FileSource(path=parts.path.rstrip("/") or "/"))
    except ValidationError as err:
        raise SpecError(f"--source {url!r}: {format_errors(err, '')}") from None
    raise SpecError(f"--source {url!r}: scheme must be s3://, gs://, az://, hf://, http(s):// or file://")


def spec_from_flags(source_url: str, layout: str, versions: list[str]) -> DatasetCacheSpec:
    """Build a spec from `--source/--layout/--version` flags."""
    nested: dict[str, dict[str, str]] = {}
    try:
        for arg in versions:
            key = parse_version_arg(arg)
            if nested.setdefault(key.data_type, {}).setdefault(key.source, key.version) != key.version:
                raise SpecError(f"--version {arg!r} conflicts with another --version for {key.slot}")
    except NameError_ as err:
        raise SpecError(str(err)) from None
    if not nested:
        raise SpecError("at least one --version DT/SRC=VER is required")
    source = source_from_url(source_url)
    return parse_spec(
        {"source": source.model_dump(by_alias=True, exclude_none=True), "layout": layout, "versions": nested},
        "flags",
    )
