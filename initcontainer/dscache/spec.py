"""The DatasetCache spec: one typed, validated model for the CRD, the operator and the CLI.

`dscache install -f datasetcache.yaml` accepts the very manifest a user would `kubectl apply`.
Field names are camelCase on the wire (as in Kubernetes) and snake_case in Python.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from dscache.names import NameError_, check_segment, check_source

API_GROUP = "dscache.io"
API_VERSION = "v1alpha1"
KIND = "DatasetCache"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class SpecError(ValueError):
    """The spec is invalid; the message names the field (e.g. `spec.source.s3.bucket`)."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SecretRef(_Model):
    """A Secret in the resource's namespace holding credentials; only the installer Job sees it."""

    name: str = Field(description="Name of the Secret.", min_length=1, max_length=253)


class S3Source(_Model):
    """An S3-compatible bucket: AWS S3, Cloudflare R2, MinIO, ..."""

    bucket: str = Field(description="Bucket name.", min_length=1, max_length=255)
    prefix: str = Field("", description="Key prefix under which `<dataType>/<source>/<version>/` live.")
    endpoint: str | None = Field(None, description="Endpoint URL for non-AWS stores (R2, MinIO).")
    region: str | None = Field(None, description="Region (AWS); most other stores ignore it.")
    anonymous: bool = Field(False, description="Unsigned requests, for public buckets.")
    secret_ref: SecretRef | None = Field(
        None, description="Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)."
    )


class HuggingFaceSource(_Model):
    """A Hugging Face Hub repository."""

    repo: str = Field(description="Repository id, OWNER/NAME.", pattern=r"^[\w.-]+/[\w.-]+$")
    repo_type: Literal["dataset", "model"] = Field("dataset", description="Repository type.")
    prefix: str = Field("", description="Directory inside the repo that mirrors the bucket layout.")
    revision: str = Field("main", description="Branch, tag or commit; recorded as the resolved commit.")
    revision_from_version: bool = Field(
        False,
        description="files layout: each version is a revision (branch, tag or commit) of the repo, and its "
        "content is the repo's files under prefix at that revision (e.g. a model repo at a tag).",
    )
    endpoint: str | None = Field(None, description="Hub endpoint (default HF_ENDPOINT or huggingface.co).")
    secret_ref: SecretRef | None = Field(None, description="Secret with HF_TOKEN.")


class HttpSource(_Model):
    """A plain HTTP(S) base URL, e.g. a public R2 bucket URL."""

    url: str = Field(description="Base URL.", pattern=r"^https?://")


class FileSource(_Model):
    """A local directory (laptop and CI use)."""

    path: str = Field(description="Absolute path of the directory.", pattern=r"^/")


class Source(_Model):
    """Where the data comes from: exactly one of s3, huggingFace, http, file."""

    s3: S3Source | None = None
    hugging_face: HuggingFaceSource | None = None
    http: HttpSource | None = None
    file: FileSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [k for k in ("s3", "hugging_face", "http", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of s3, huggingFace, http, file must be set (got {len(given)})")
        return self

    @property
    def secret_ref(self) -> SecretRef | None:
        if self.s3 is not None:
            return self.s3.secret_ref
        if self.hugging_face is not None:
            return self.hugging_face.secret_ref
        return None

    def url(self) -> str:
        """The source as a URL (an http URL as given: use `remotes.factory.display_url` for logs)."""
        if self.s3 is not None:
            return f"s3://{self.s3.bucket}/{self.s3.prefix}".rstrip("/")
        if self.hugging_face is not None:
            hf = self.hugging_face
            path = f"{hf.repo}/{hf.prefix}".rstrip("/")
            return f"hf://{hf.repo_type}s/{path}@{hf.revision}"
        if self.http is not None:
            return self.http.url.rstrip("/")
        assert self.file is not None
        return f"file://{self.file.path}"


class CreateVolume(_Model):
    """A PVC the operator creates (ReadWriteMany) and owns."""

    storage_class_name: str | None = Field(None, description="StorageClass; cluster default if unset.")
    size: str = Field(description="Requested size, a Kubernetes quantity such as 500Gi.")

    @field_validator("size")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not _QUANTITY.match(v):
            raise ValueError(f"{v!r} is not a Kubernetes quantity such as 500Gi")
        return v


class Volume(_Model):
    """The shared cache volume: an existing RWX claim, or one to create."""

    claim_name: str | None = Field(None, description="Name of an existing ReadWriteMany PVC.")
    create: CreateVolume | None = Field(None, description="Create a PVC with this class and size.")

    @model_validator(mode="after")
    def _one(self) -> Volume:
        if (self.claim_name is None) == (self.create is None):
            raise ValueError("exactly one of claimName, create must be set")
        return self


class Install(_Model):
    """How the installer Job runs."""

    parallelism: int = Field(4, ge=1, le=64, description="Archives or files transferred at once.")
    verify: bool = Field(
        True,
        description="Verify digests where the remote publishes them (dscache-manifest sha256, HF LFS "
        "sha256, S3 single-part ETag); sizes are always checked. Turn off for SSE-KMS buckets, whose ETags "
        "are not MD5s.",
    )
    resources: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Kubernetes resource requests/limits of the installer container."
    )
    backoff_limit: int = Field(3, ge=0, le=20, description="Job backoffLimit.")
    active_deadline_seconds: int = Field(
        6 * 3600, ge=60, le=7 * 24 * 3600, description="Job activeDeadlineSeconds."
    )


class Retention(_Model):
    """What happens to versions no longer referenced."""

    keep: int = Field(2, ge=0, le=1000, description="Unreferenced versions kept per source (newest first).")
    on_delete: Literal["Retain", "Delete"] = Field(
        "Retain", description="On deletion of the DatasetCache: keep the data, or remove its versions."
    )


class HostPathScratch(_Model):
    """Node-local scratch on a host directory shared by all pods on the node."""

    path: str = Field(description="Host directory.", pattern=r"^/")
    max_bytes: int | None = Field(None, ge=0, description="Byte budget; LRU eviction beyond it.")


class Scratch(_Model):
    """Default node-local scratch for pods: none, emptyDir or hostPath."""

    mode: Literal["none", "emptyDir", "hostPath"] = Field("none", description="Scratch kind.")
    size_limit: str | None = Field(None, description="emptyDir sizeLimit (a Kubernetes quantity).")
    host_path: HostPathScratch | None = Field(None, description="Required when mode is hostPath.")

    @model_validator(mode="after")
    def _host(self) -> Scratch:
        if (self.mode == "hostPath") != (self.host_path is not None):
            raise ValueError("hostPath must be set exactly when mode is hostPath")
        return self


class DatasetCacheSpec(_Model):
    """The desired state of a DatasetCache."""

    source: Source = Field(description="Where the versions come from.")
    layout: Literal["archives", "files"] = Field(
        "archives", description="archives: .tar.zst per version (molmospaces); files: plain file trees."
    )
    versions: dict[str, dict[str, str]] = Field(
        description="{dataType: {source: version}}; source may contain inner '/'.", min_length=1
    )
    volume: Volume | None = Field(None, description="The shared cache volume (required in a cluster).")
    install: Install = Field(default_factory=Install, description="Installer Job settings.")
    retention: Retention = Field(default_factory=Retention, description="Retention of old versions.")
    scratch: Scratch = Field(default_factory=Scratch, description="Default node-local scratch for pods.")
    link_strategy: dict[str, Literal["directory", "perFile"]] = Field(
        default_factory=dict, description="Per data type: one link per source, or a tree of per-file links."
    )
    env_names: dict[str, str] = Field(
        default_factory=dict, description="Environment variable name per 'dataType/source'."
    )
    mount_path: str = Field("/dscache", description="Where pods see the linked data.", pattern=r"^/")

    @field_validator("versions")
    @classmethod
    def _safe_versions(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for data_type, by_source in v.items():
            check_segment(data_type, "data type")
            if not by_source:
                raise ValueError(f"data type {data_type!r} lists no sources")
            for source, version in by_source.items():
                check_source(source, f"source of {data_type!r}")
                check_segment(version, f"version of {data_type}/{source}")
        return v

    @field_validator("env_names")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for slot, name in v.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} (for {slot!r}) is not a valid environment variable name")
        return v

    @model_validator(mode="after")
    def _revision_needs_files(self) -> DatasetCacheSpec:
        hf = self.source.hugging_face
        if hf is not None and hf.revision_from_version and self.layout != "files":
            raise ValueError("source.huggingFace.revisionFromVersion requires layout: files")
        return self

    @model_validator(mode="after")
    def _refs_known(self) -> DatasetCacheSpec:
        for dt in self.link_strategy:
            if dt not in self.versions:
                raise ValueError(f"linkStrategy names data type {dt!r} which is not in versions")
        slots = {f"{dt}/{src}" for dt, by in self.versions.items() for src in by}
        for slot in self.env_names:
            if slot not in slots:
                raise ValueError(f"envNames names {slot!r} which is not a dataType/source in versions")
        return self


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
        if v != f"{API_GROUP}/{API_VERSION}":
            raise ValueError(f"must be {API_GROUP}/{API_VERSION}")
        return v

    @property
    def ref_name(self) -> str:
        """Default ref: `<namespace>.<name>`."""
        return f"{self.metadata.namespace}.{self.metadata.name}"


def _format_errors(err: ValidationError, root: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (root, *e["loc"]) if p != "") if root else ".".join(map(str, e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}")
    return "; ".join(lines)


def parse_manifest(doc: Any, origin: str = "manifest") -> DatasetCache:
    """Validate a DatasetCache manifest (already parsed) or raise SpecError naming the field."""
    try:
        return DatasetCache.model_validate(doc)
    except ValidationError as err:
        raise SpecError(f"{origin}: {_format_errors(err, '')}") from None


def parse_spec(doc: Any, origin: str = "") -> DatasetCacheSpec:
    """Validate a bare spec dict or raise SpecError naming the field (`spec.<path>`)."""
    try:
        return DatasetCacheSpec.model_validate(doc)
    except ValidationError as err:
        message = _format_errors(err, "spec")
        raise SpecError(f"{origin}: {message}" if origin else message) from None


def _read_text(path: Path, origin: str) -> str:
    import sys

    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as err:
        raise SpecError(f"{origin}: cannot read: {err.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SpecError(f"{origin}: not UTF-8 text (byte {err.start})") from None


def _documents(text: str, origin: str) -> list[tuple[int, Any]]:
    """(first line, object) of each non-empty YAML document; `kind: List` objects are expanded."""
    import yaml  # only here: ~15 ms that an install from flags does not need

    docs: list[tuple[int, Any]] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            doc = loader.construct_document(node)
            line = node.start_mark.line + 1 if node is not None else 1
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                docs += [(line, item) for item in doc["items"]]
            elif doc is not None:
                docs.append((line, doc))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark is not None else origin
        raise SpecError(f"{where}: not valid YAML/JSON: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{origin}: not valid YAML/JSON: {err}") from None
    finally:
        loader.dispose()
    return docs


def _name_of(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def load_manifest(path: Path, name: str | None = None) -> DatasetCache:
    """Load the DatasetCache from a YAML or JSON file (`-`: stdin), which may hold several documents
    (`---`) or a `kind: List`. With one DatasetCache in it, that one; with several, the one `name`
    (`NAME` or `NAMESPACE/NAME`) picks. Raises SpecError naming the file (and the line, for a syntax
    error): unreadable or not UTF-8, not YAML, empty, no DatasetCache (the kinds found are named),
    several without `name`, no match for `name`, or a field that fails validation."""
    origin = "<stdin>" if str(path) == "-" else str(path)
    docs = _documents(_read_text(path, origin), origin)
    if not docs:
        raise SpecError(f"{origin}: empty: no document with kind: {KIND}")
    for line, doc in docs:
        if not isinstance(doc, dict):
            raise SpecError(f"{origin}:{line}: a document is a {type(doc).__name__}, not a Kubernetes object")
    found = [(line, doc) for line, doc in docs if doc.get("kind") == KIND]
    if not found:
        kinds = ", ".join(sorted({str(doc.get("kind", "(no kind)")) for _, doc in docs}))
        raise SpecError(f"{origin}: no document with kind: {KIND} (found: {kinds})")
    names = [_name_of(doc) for _, doc in found]
    if name is not None:
        picked = [
            f
            for f, n in zip(found, names, strict=True)
            if (n == name if "/" in name else n.endswith(f"/{name}"))
        ]
        if len(picked) != 1:
            count = "no" if not picked else str(len(picked))
            hint = "" if not picked else "; use --name NAMESPACE/NAME"
            raise SpecError(f"{origin}: {count} {KIND} named {name!r} (it holds {', '.join(names)}){hint}")
        found = picked
    elif len(found) > 1:
        raise SpecError(
            f"{origin}: {len(found)} {KIND} documents ({', '.join(names)}): choose one with --name NAME"
        )
    line, doc = found[0]
    return parse_manifest(doc, origin if len(docs) == 1 else f"{origin}:{line}")


def _shown(url: str) -> str:
    """`url` for an error message: userinfo (credentials) replaced by `***`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def source_from_url(url: str, flag: str = "--source") -> Source:
    """Parse a source URL given as `flag`: s3://bucket/prefix, hf://datasets/OWNER/REPO[/PREFIX][@REV],
    http(s)://host/base, file:///dir (or file:/dir).

    Raises SpecError naming the flag and the URL (credentials hidden): unknown scheme, missing bucket
    or host, a host in a file URL (`file://host/path`: only local directories), a relative file path,
    credentials in an s3/hf URL, a query string or fragment where it would be silently dropped.
    """
    parts = urlsplit(url)
    where = f"{flag} {_shown(url)!r}"
    try:
        if parts.scheme in ("s3", "hf", "file") and (parts.query or parts.fragment):
            raise SpecError(f"{where}: a query string or fragment has no meaning in a {parts.scheme}: URL")
        if parts.scheme in ("s3", "hf") and "@" in parts.netloc:
            raise SpecError(f"{where}: no credentials in the URL; use the environment (see --help)")
        if parts.scheme == "s3":
            if not parts.netloc:
                raise SpecError(f"{where}: missing bucket name")
            return Source(s3=S3Source(bucket=parts.netloc, prefix=parts.path.strip("/")))
        if parts.scheme == "hf":
            rest = f"{parts.netloc}{parts.path}"
            rest, _, revision = rest.partition("@")
            segs = [s for s in rest.split("/") if s]
            if len(segs) < 3 or segs[0] not in ("datasets", "models"):
                raise SpecError(f"{where}: use hf://datasets/OWNER/REPO[/PREFIX][@REVISION]")
            return Source(
                hugging_face=HuggingFaceSource(
                    repo=f"{segs[1]}/{segs[2]}",
                    repo_type="dataset" if segs[0] == "datasets" else "model",
                    prefix="/".join(segs[3:]),
                    revision=revision or "main",
                )
            )
        if parts.scheme in ("http", "https"):
            if not parts.hostname:
                raise SpecError(f"{where}: missing host")
            return Source(http=HttpSource(url=url.rstrip("/")))
        if parts.scheme == "file":
            if parts.netloc:
                raise SpecError(
                    f"{where}: a file URL names a local directory and takes no host "
                    f"({parts.netloc!r}); write file:///absolute/path"
                )
            if not parts.path.startswith("/"):
                raise SpecError(f"{where}: the path must be absolute: file:///absolute/path")
            return Source(file=FileSource(path=parts.path.rstrip("/") or "/"))
    except ValidationError as err:
        raise SpecError(f"{where}: {_format_errors(err, '')}") from None
    raise SpecError(
        f"{where}: scheme must be s3://, hf://, http(s):// or file:// (got {parts.scheme or 'none'!r})"
    )


def spec_from_flags(source_url: str, layout: str, versions: list[str]) -> DatasetCacheSpec:
    """Build a spec from `--source/--layout/--version` flags."""
    from dscache.names import parse_version_arg

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
