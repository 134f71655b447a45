"""Where a spec comes from: a DatasetCache manifest (as `kubectl apply` takes it), a URL, CLI flags.

`dscache install -f datasetcache.yaml` accepts the very manifest a user would `kubectl apply`. Errors
are `SpecError`s naming the file and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dscache.api.envnames import derived_name
from dscache.api.names import NameError_, VersionKey, parse_version_arg
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
from dscache.api.urls import HTTP_FILES, endpoint_refusal, hide_userinfo

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


def _strict_loader(text: str) -> Any:
    """A `yaml.SafeLoader` over `text` that refuses a mapping with one key twice (plain SafeLoader keeps
    the last, so `layout: Files` then `layout: Archives` would silently install Archives). The error is
    a `ConstructorError` marked at the second key, naming the line of the first."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                first_line: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        seen = first_line.get(key)
                    except TypeError:  # an unhashable key: the base class reports it
                        continue
                    if seen is not None:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first on line {seen})", key_node.start_mark
                        )
                    first_line[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    return StrictLoader(text)


def _documents(text: str, origin: str) -> list[tuple[int, Any]]:
    """(first line, object) of each non-empty YAML document; `kind: List` objects are expanded. A
    mapping with a duplicate key is refused (SpecError naming the key and both lines)."""
    import yaml  # only here: ~15 ms that an install from flags does not need

    docs: list[tuple[int, Any]] = []
    loader = _strict_loader(text)
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


def _azure(where: str, account: str, path: str) -> Source:
    """An Azure source from an account and `container[/prefix]`; `where` names the flag and URL."""
    container, _, prefix = path.strip("/").partition("/")
    if not account or not container:
        raise SpecError(f"{where}: use az://ACCOUNT/CONTAINER[/PREFIX]")
    return Source(azure=AzureSource(account=account, container=container, prefix=prefix.strip("/")))


def source_from_url(url: str, flag: str = "--source") -> Source:
    """Parse a source URL given as `flag`: s3://bucket/prefix, gs:// (or gcs://) bucket/prefix,
    az://account/container/prefix (or https://ACCOUNT.blob.core.windows.net/container/prefix),
    hf://datasets/OWNER/REPO[/PREFIX][@REV], http(s)://host/base, file:///dir (or file:/dir).

    Raises SpecError naming the flag and the URL (credentials hidden): unknown scheme, missing bucket
    or host, a host in a file URL (`file://host/path`: only local directories), a relative file path,
    credentials in an s3/gs/az/hf URL, a query string or fragment where it would be silently dropped.
    """
    where = f"{flag} {hide_userinfo(url)!r}"
    try:
        parts = urlsplit(url)
    except ValueError as err:  # an unclosed '[' ("Invalid IPv6 URL")
        raise SpecError(f"{where}: not a URL: {endpoint_refusal(url) or err}") from None
    try:
        if parts.scheme in ("s3", "gs", "gcs", "az", "hf", "file") and (parts.query or parts.fragment):
            raise SpecError(f"{where}: a query string or fragment has no meaning in a {parts.scheme}: URL")
        if parts.scheme in ("s3", "gs", "gcs", "az", "hf") and "@" in parts.netloc:
            raise SpecError(f"{where}: no credentials in the URL; use the environment (see --help)")
        if parts.scheme == "s3":
            if not parts.netloc:
                raise SpecError(f"{where}: missing bucket name")
            return Source(s3=S3Source(bucket=parts.netloc, prefix=parts.path.strip("/")))
        if parts.scheme in ("gs", "gcs"):
            if not parts.netloc:
                raise SpecError(f"{where}: missing bucket name")
            return Source(gcs=GcsSource(bucket=parts.netloc, prefix=parts.path.strip("/")))
        if parts.scheme == "az":
            return _azure(where, parts.netloc, parts.path)
        azure_host = _AZURE_HOST.match(parts.hostname or "") if parts.scheme == "https" else None
        if azure_host is not None and not parts.query and parts.username is None:
            return _azure(where, azure_host.group(1), parts.path)
        if parts.scheme == "hf":
            rest = f"{parts.netloc}{parts.path}"
            rest, _, revision = rest.partition("@")
            segs = [s for s in rest.split("/") if s]
            if len(segs) < 3 or segs[0] not in ("datasets", "models"):
                raise SpecError(f"{where}: use hf://datasets/OWNER/REPO[/PREFIX][@REVISION]")
            return Source(
                hugging_face=HuggingFaceSource(
                    repo=f"{segs[1]}/{segs[2]}",
                    repo_type="Dataset" if segs[0] == "datasets" else "Model",
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
            path = unquote(parts.path)  # file:///tmp/my%20remote is /tmp/my remote (RFC 8089)
            if not path.startswith("/"):
                raise SpecError(f"{where}: the path must be absolute: file:///absolute/path")
            return Source(file=FileSource(path=path.rstrip("/") or "/"))
    except ValidationError as err:
        raise SpecError(f"{where}: {format_errors(err, '')}") from None
    raise SpecError(
        f"{where}: scheme must be s3://, gs://, az://, hf://, http(s):// or file:// "
        f"(got {parts.scheme or 'none'!r})"
    )


_SCHEMES = ("s3", "gs", "gcs", "az", "hf", "http", "https", "file")


def source_from_arg(text: str, flag: str = "--source") -> Source:
    """The source a command-line argument names, the same for `install --source` and `ls-remote
    SOURCE`: a URL as `source_from_url` takes it (`file:///dir` and `file:/dir` included), or a path
    of an existing local directory (`./remote`, `/tmp/remote`), made absolute. Raises SpecError
    naming the flag: a path that is no directory says to give `file:///absolute/path` or the path of
    a directory; other errors as `source_from_url`."""
    scheme = text.partition(":")[0].lower() if ":" in text else ""
    if scheme in _SCHEMES or "://" in text:
        return source_from_url(text, flag)
    if text and os.path.isdir(text):
        return Source(file=FileSource(path=os.path.abspath(text).rstrip("/") or "/"))
    raise SpecError(
        f"{flag} {hide_userinfo(text)!r}: not a URL (s3://, gs://, az://, hf://, http(s)://, "
        "file:///absolute/path) nor an existing directory; use file:///absolute/path or a directory path"
    )


FLAG_LAYOUTS = {"archives": "Archives", "files": "Files"}
"""`--layout` values, lower-cased (the flag takes any case), and the spec's layout each stands for."""


def spec_from_flags(source_url: str, layout: str, versions: list[str]) -> DatasetCacheSpec:
    """Build a spec from `--source/--layout/--version` flags (`layout`: a key of FLAG_LAYOUTS, or the
    spec's spelling)."""
    by_slot: dict[str, VersionKey] = {}
    by_env: dict[str, VersionKey] = {}
    try:
        for arg in versions:
            key = parse_version_arg(arg)
            if by_slot.setdefault(key.slot, key) != key:
                raise SpecError(f"--version {arg!r} conflicts with another --version for {key.slot}")
            other = by_env.setdefault(derived_name(key), key)
            if other.slot != key.slot:
                raise SpecError(
                    f"--version {arg!r} and --version '{other}' both get environment variable "
                    f"{derived_name(key)}: rename a source, or use -f with a manifest that sets envName"
                )
    except NameError_ as err:
        raise SpecError(str(err)) from None
    if not by_slot:
        raise SpecError("at least one --version DT/SRC=VER is required")
    source = source_from_arg(source_url)
    if source.http is not None and FLAG_LAYOUTS.get(layout.lower(), layout) == "Files":
        raise SpecError(f"--layout Files with --source {source.display_url()}: {HTTP_FILES}")
    items = [{"dataType": k.data_type, "source": k.source, "version": k.version} for k in by_slot.values()]
    return parse_spec(
        {
            "source": source.model_dump(by_alias=True, exclude_none=True),
            "layout": FLAG_LAYOUTS.get(layout.lower(), layout),
            "versions": items,
        },
        "flags",
    )
