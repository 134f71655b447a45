"""The DatasetCache spec: one typed, validated model for the CRD, the operator and the CLI.

Field names are camelCase on the wire (as in Kubernetes) and snake_case in Python. Whole manifests,
source URLs and CLI flags become a spec in `dscache.api.manifest`; the CRD's schema is generated from
these models (`dscache_operator.crd`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from dscache.api.envnames import ENV_NAME_PATTERN, ROOT_VAR, derived_name
from dscache.api.names import VersionKey, check_segment, check_source
from dscache.api.podsettings import (
    DNS_SUBDOMAIN_PATTERN,
    RESOURCE_QUANTITY_PATTERN,
    PodSettings,
    PrepareSettings,
)
from dscache.api.sizes import parse_size
from dscache.api.syspaths import mount_path_refusal
from dscache.api.unsafeenv import refusal as env_name_refusal
from dscache.api.urls import ENDPOINT_EXAMPLE, HTTP_FILES, display_url, endpoint_refusal, hide_userinfo
from dscache.api.versionorder import KEEP_RULE
from dscache.errors import InvalidInputError

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_QUANTITY = re.compile(QUANTITY_PATTERN)
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_K8S_NAME = re.compile(K8S_NAME_PATTERN)


class SpecError(InvalidInputError):
    """The spec is invalid; the message names the field (e.g. `spec.source.s3.bucket`)."""


def _endpoint(value: str | None, dns: bool = False, credentials: bool = False) -> str | None:
    """An endpoint (`credentials`: or a base URL that may hold `user:password@`) as `endpoint_refusal`
    takes it; raises ValueError saying why not."""
    if value is None:
        return value
    refused = endpoint_refusal(value, dns=dns, credentials=credentials)
    if refused is not None:
        raise ValueError(f"{hide_userinfo(value)!r} is not a usable URL: {refused}")
    return value


_S3_BUCKET = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
S3_BUCKET_RULE = (
    "S3 bucket names are 3-63 characters: lowercase ASCII letters, digits, '.' and '-', starting and "
    "ending with a letter or digit (buckets made before 2018 in us-east-1 may also have uppercase "
    "letters and '_', up to 255 characters), e.g. my-datasets"
)


def s3_bucket_refusal(name: str) -> str | None:
    """Pure: why `name` cannot be an S3 bucket name, or None. Refuses what botocore would refuse later
    with a multi-line ParamValidationError (characters other than ASCII letters, digits, '.', '_' and
    '-'; more than 255), and says S3's rule; names S3 itself refuses for other reasons (too short,
    uppercase in a new bucket) are left to S3, whose answer names the bucket. Access point ARNs
    (`arn:...`) pass to botocore, which checks them."""
    if name.startswith("arn:") or _S3_BUCKET.match(name):
        return None
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "._-"))})
    which = f" ({', '.join(repr(c) for c in bad)} not allowed)" if bad else " (more than 255 characters)"
    return f"{name!r} is not an S3 bucket name{which}: {S3_BUCKET_RULE}"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def _respelled(new: tuple[str, ...]) -> BeforeValidator:
    """Refuse a value of a CamelCase enum spelled as before v1alpha1's reshape (`files`, `emptyDir`,
    `perFile`, ...) with one line that names the new spelling; other values pass to the enum check."""
    by_lower = {n.lower(): n for n in new}

    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in new and value.lower() in by_lower:
            raise ValueError(f"{value!r} is now {by_lower[value.lower()]!r}")
        return value

    return BeforeValidator(check)


Layout = Annotated[Literal["Archives", "Files"], _respelled(("Archives", "Files"))]
LinkStrategy = Annotated[Literal["Directory", "PerFile"], _respelled(("Directory", "PerFile"))]
ScratchMode = Annotated[Literal["None", "EmptyDir", "HostPath"], _respelled(("None", "EmptyDir", "HostPath"))]
RepoType = Annotated[Literal["Dataset", "Model"], _respelled(("Dataset", "Model"))]
LINK_STRATEGY_IN_REF = {"Directory": "directory", "PerFile": "perFile"}
"""A version's `link` as the ref on the volume records it (the ref's own format, read by `prepare`)."""


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

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        refused = s3_bucket_refusal(v)
        if refused is not None:
            raise ValueError(refused)
        return v

    @field_validator("endpoint")
    @classmethod
    def _usable_url(cls, v: str | None) -> str | None:
        return _endpoint(v, dns=True)  # botocore takes DNS host names only


class GcsSource(_Model):
    """A Google Cloud Storage bucket (or an endpoint that speaks its JSON API: fake-gcs-server)."""

    bucket: str = Field(description="Bucket name.", min_length=1, max_length=222)
    prefix: str = Field("", description="Object prefix under which `<dataType>/<source>/<version>/` live.")
    endpoint: str | None = Field(
        None,
        description="API endpoint other than https://storage.googleapis.com (an emulator or a private "
        "deployment); default STORAGE_EMULATOR_HOST, if set.",
        pattern=r"^https?://",
    )
    anonymous: bool = Field(False, description="Unauthenticated requests, for public buckets.")
    secret_ref: SecretRef | None = Field(
        None,
        description="Secret with GOOGLE_APPLICATION_CREDENTIALS: a service account's JSON key (the "
        "document itself). Without it: GKE Workload Identity (the metadata server) or other application "
        "default credentials.",
    )

    @field_validator("endpoint")
    @classmethod
    def _usable_url(cls, v: str | None) -> str | None:
        return _endpoint(v)


class AzureSource(_Model):
    """An Azure Blob Storage container (or an endpoint that speaks its REST API: Azurite)."""

    account: str = Field(description="Storage account name.", pattern=r"^[a-z0-9]{3,24}$")
    container: str = Field(
        description="Container name.", pattern=r"^(\$root|\$web|[a-z0-9][a-z0-9-]{1,61}[a-z0-9])$"
    )
    prefix: str = Field("", description="Blob prefix under which `<dataType>/<source>/<version>/` live.")
    endpoint: str | None = Field(
        None,
        description="Account URL other than https://ACCOUNT.blob.core.windows.net (Azurite, sovereign "
        "clouds, private endpoints); default the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING, if set.",
        pattern=r"^https?://",
    )
    anonymous: bool = Field(False, description="Unauthenticated requests, for public containers.")
    secret_ref: SecretRef | None = Field(
        None,
        description="Secret with AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or "
        "AZURE_STORAGE_SAS_TOKEN. Without it: Azure Workload Identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, "
        "AZURE_FEDERATED_TOKEN_FILE).",
    )

    @field_validator("endpoint")
    @classmethod
    def _usable_url(cls, v: str | None) -> str | None:
        return _endpoint(v)


class HuggingFaceSource(_Model):
    """A Hugging Face Hub repository."""

    repo: str = Field(description="Repository id, OWNER/NAME.", pattern=r"^[\w.-]+/[\w.-]+$")
    repo_type: RepoType = Field("Dataset", description="Repository type: Dataset or Model.")
    prefix: str = Field("", description="Directory inside the repo that mirrors the bucket layout.")
    revision: str = Field("main", description="Branch, tag or commit; recorded as the resolved commit.")
    revision_from_version: bool = Field(
        False,
        description="files layout: each version is a revision (branch, tag or commit) of the repo, and its "
        "content is the repo's files under prefix at that revision (e.g. a model repo at a tag).",
    )
    endpoint: str | None = Field(None, description="Hub endpoint (default HF_ENDPOINT or huggingface.co).")
    secret_ref: SecretRef | None = Field(None, description="Secret with HF_TOKEN.")
    allow_patterns: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        description="files layout: install only the files whose path in the version matches one of these "
        "globs, as huggingface_hub's snapshot_download does (fnmatch, case-sensitive, '*' crosses '/'; a "
        "pattern ending in '/' takes everything below it), e.g. ['*.safetensors', '*.json'].",
    )
    ignore_patterns: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        description="files layout: leave out the files whose path in the version matches one of these "
        "globs (applied after allowPatterns, as snapshot_download does).",
    )

    @field_validator("endpoint")
    @classmethod
    def _usable_url(cls, v: str | None) -> str | None:
        return _endpoint(v)


HTTP_CREDENTIALS_IN_CLUSTER = (
    "spec.source.http.url: no user:password@ in the URL in a cluster (it would be stored in the spec and "
    "the installer's ConfigMap): put the credentials in a Secret of type kubernetes.io/basic-auth and "
    "name it in spec.source.http.secretRef"
)


class HttpSource(_Model):
    """A plain HTTP(S) base URL, e.g. a public R2 bucket URL."""

    url: str = Field(description="Base URL.", pattern=r"^https?://")
    secret_ref: SecretRef | None = Field(
        None,
        description="Secret of type kubernetes.io/basic-auth (keys username, password: Basic auth), or one "
        "with a key token (Authorization: Bearer), sent to the URL's host only.",
    )

    def has_userinfo(self) -> bool:
        """Credentials written into the URL (`user:password@host`)."""
        return "@" in urlsplit(self.url).netloc

    @field_validator("url")
    @classmethod
    def _usable_url(cls, v: str) -> str:
        return _endpoint(v, credentials=True) or v


# A cluster refuses `file` sources (the CRD, the validating webhook and the operator; `dscache install`
# on a laptop or in CI accepts them): see docs/threat-model.md.
FILE_SOURCE_IN_CLUSTER = (
    "spec.source.file is for laptops and CI (`dscache install` on a machine that has the directory): in "
    "a cluster the installer Job would copy whatever its own container can read, such as its credentials, "
    "into the cache, where every pod that uses the cache can read it; publish the directory to s3, "
    "huggingFace or http and use that source"
)


class FileSource(_Model):
    """A local directory (laptop and CI use; refused in a cluster)."""

    path: str = Field(description="Absolute path of the directory.", pattern=r"^/")


SOURCE_KINDS = ("s3", "gcs", "azure", "hugging_face", "http", "file")
"""The fields of `Source`, one per kind of remote (Python names)."""


class Source(_Model):
    """Where the data comes from: exactly one of s3, gcs, azure, huggingFace, http, file."""

    s3: S3Source | None = None
    gcs: GcsSource | None = None
    azure: AzureSource | None = None
    hugging_face: HuggingFaceSource | None = None
    http: HttpSource | None = None
    file: FileSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [k for k in SOURCE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"exactly one of s3, gcs, azure, huggingFace, http, file must be set (got {len(given)})"
            )
        return self

    @property
    def secret_ref(self) -> SecretRef | None:
        for kind in ("s3", "gcs", "azure", "hugging_face", "http"):
            given = getattr(self, kind)
            if given is not None:
                ref: SecretRef | None = given.secret_ref
                return ref
        return None

    def url(self) -> str:
        """The source as a URL (an http URL as given: use `display_url()` for logs)."""
        if self.s3 is not None:
            return f"s3://{self.s3.bucket}/{self.s3.prefix}".rstrip("/")
        if self.gcs is not None:
            return f"gs://{self.gcs.bucket}/{self.gcs.prefix}".rstrip("/")
        if self.azure is not None:
            az = self.azure
            return f"az://{az.account}/{az.container}/{az.prefix}".rstrip("/")
        if self.hugging_face is not None:
            hf = self.hugging_face
            path = f"{hf.repo}/{hf.prefix}".rstrip("/")
            return f"hf://{hf.repo_type.lower()}s/{path}@{hf.revision}"
        if self.http is not None:
            return self.http.url.rstrip("/")
        assert self.file is not None
        return f"file://{self.file.path}"

    def display_url(self) -> str:
        """`url()` safe for logs and status: no userinfo, query strings or tokens."""
        return display_url(self.http.url) if self.http is not None else self.url()


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


class Install(PodSettings):
    """How the installer Job runs, and its pods' identity, placement and environment (PodSettings)."""

    parallelism: int = Field(4, ge=1, le=64, description="Archives or files transferred at once.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Installer pods (an Indexed Job, spread over nodes) that each transfer a share of the "
        "items into the shared volume; the version is published once, when all items are there.",
    )
    verify: bool = Field(
        True,
        description="Check each downloaded file or archive against the digests its remote states: "
        "dscache-manifest sha256, HF LFS sha256, GCS and Azure MD5s, S3 ETags that are MD5s (single-part "
        "uploads, unencrypted or SSE-S3) and S3 stored checksums. SSE-KMS, SSE-C and multipart ETags are "
        "recognised and never taken for MD5s, so such buckets need no change here. Sizes are always "
        "checked; false checks sizes only.",
    )
    backoff_limit: int = Field(3, ge=0, le=20, description="Job backoffLimit.")
    active_deadline_seconds: int = Field(
        6 * 3600, ge=60, le=7 * 24 * 3600, description="Job activeDeadlineSeconds."
    )


class Retention(_Model):
    """What happens to versions no longer referenced."""

    keep: int = Field(2, ge=0, le=1000, description=f"Unreferenced versions kept per source: {KEEP_RULE}.")
    on_delete: Literal["Retain", "Delete"] = Field(
        "Retain", description="On deletion of the DatasetCache: keep the data, or remove its versions."
    )


# A size in bytes as every other size of the spec is written: a quantity (`500Gi`, `2T`), or a number.
BYTE_QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[kMGTPE]|[eE]\+?[0-9]+)?$"
_BYTE_QUANTITY = re.compile(BYTE_QUANTITY_PATTERN)


def _bytes(value: Any) -> Any:
    """A quantity text (`500Gi`) as its bytes; a negative number is refused, others pass on to the
    integer check. Raises ValueError saying why not."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"{value!r} is negative: use bytes or a Kubernetes quantity such as 500Gi or 2T")
    if not isinstance(value, str):
        return value
    if not _BYTE_QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a size: use bytes or a Kubernetes quantity such as 500Gi or 2T")
    return parse_size(value)


ByteSize = Annotated[
    int,
    BeforeValidator(_bytes),
    WithJsonSchema(  # the API server takes int-or-string only with exactly this anyOf (no minimum)
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": BYTE_QUANTITY_PATTERN,
        }
    ),
]
"""Bytes, written as a Kubernetes quantity (`500Gi`) or a whole number; a whole number of bytes inside."""


class HostPathScratch(_Model):
    """Node-local scratch on a host directory shared by all pods on the node."""

    path: str = Field(description="Host directory.", pattern=r"^/")
    max_bytes: ByteSize | None = Field(
        None,
        description="Most bytes of scratch copies kept in the host directory, a quantity such as 500Gi (or "
        "a number of bytes); beyond it the least recently used copies are evicted (not those used in the "
        "last hour). Unset: no limit.",
    )


class Scratch(_Model):
    """Default node-local scratch for pods: None, EmptyDir or HostPath."""

    mode: ScratchMode = Field("None", description="Scratch kind: None, EmptyDir or HostPath.")
    size_limit: str | None = Field(None, description="EmptyDir sizeLimit (a Kubernetes quantity).")
    host_path: HostPathScratch | None = Field(None, description="Required when mode is HostPath.")

    @model_validator(mode="after")
    def _host(self) -> Scratch:
        if (self.mode == "HostPath") != (self.host_path is not None):
            raise ValueError("hostPath must be set exactly when mode is HostPath")
        return self


class VersionItem(_Model):
    """One cached version: a data type's source at a version, with how pods link it and its variable."""

    data_type: str = Field(description="Data type: the first path segment on the volume and the remote.")
    source: str = Field(description="Source within the data type; may contain inner '/'.")
    version: str = Field(description="Version to install and link.")
    link: LinkStrategy = Field(
        "Directory",
        description="How pods link it: Directory (one link for the source) or PerFile (a real directory "
        "tree of per-file links, so `../` references between files keep working).",
    )
    env_name: str | None = Field(
        None,
        description="Environment variable pods get with the source's stable path (default "
        "DSCACHE_<DATATYPE>_<SOURCE>, upper-cased, other characters as '_').",
    )

    @field_validator("data_type")
    @classmethod
    def _data_type(cls, v: str) -> str:
        return check_segment(v, "data type")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        return check_source(v)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_segment(v, "version")

    @field_validator("env_name")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid environment variable name")
        refused = env_name_refusal(v)
        if refused is not None:
            raise ValueError(refused)
        return v

    @property
    def key(self) -> VersionKey:
        return VersionKey(self.data_type, self.source, self.version)

    @property
    def slot(self) -> str:
        """`<dataType>/<source>`, the list's key."""
        return f"{self.data_type}/{self.source}"


_APART = {
    "differs only in case from": ": on a case-insensitive volume (SMB, Azure Files, macOS) both are one "
    "directory, mixing two datasets; name them apart by more than case",
    "lies inside": ": pods link each source at <mountPath>/<dataType>/<source>, so its link would sit "
    "inside the other's published version; give one of them a source that is not a prefix of the other",
    "holds inside it": ": pods link each source at <mountPath>/<dataType>/<source>, so the other's link "
    "would sit inside this one's published version; give one of them a source that is not a prefix of the "
    "other",
}


def slot_clash(first: str, second: str) -> str | None:
    """Pure: how slot `second` (`<dataType>/<source>`) clashes with `first` listed before it, as the
    words between the two in a message, or None. Compared without case (a case-insensitive volume
    makes `objects/Thor` and `objects/thor` one directory) and by whole segments (`objects/a` holds
    `objects/a/b`, not `objects/ab`); two equal slots are `DatasetCacheSpec._unique`'s to refuse."""
    a, b = first.casefold().split("/"), second.casefold().split("/")
    if a == b:
        return "differs only in case from" if first != second else None
    if b[: len(a)] == a:
        return "lies inside"
    if a[: len(b)] == b:
        return "holds inside it"
    return None


OLD_SHAPE = {
    "linkStrategy": "spec.linkStrategy is now spec.versions[].link (Directory or PerFile) on each version",
    "envNames": "spec.envNames is now spec.versions[].envName on each version",
}
OLD_VERSIONS = (
    "is now a list of {dataType, source, version} items (optional link and envName), e.g. "
    "[{dataType: objects, source: thor, version: '2024-01'}]"
)


class DatasetCacheSpec(_Model):
    """The desired state of a DatasetCache."""

    source: Source = Field(description="Where the versions come from.")
    layout: Layout = Field(
        "Archives", description="Archives: .tar.zst per version (molmospaces); Files: plain file trees."
    )
    versions: list[VersionItem] = Field(
        description="The versions to install and link, one item per (dataType, source).", min_length=1
    )
    volume: Volume | None = Field(None, description="The shared cache volume (required in a cluster).")
    install: Install = Field(default_factory=Install, description="Installer Job settings.")
    prepare: PrepareSettings = Field(
        default_factory=PrepareSettings,
        description="The init container injected into pods: env, envFrom, resources (placement: the pod's).",
    )
    retention: Retention = Field(default_factory=Retention, description="Retention of old versions.")
    scratch: Scratch = Field(default_factory=Scratch, description="Default node-local scratch for pods.")
    mount_path: str = Field(
        "/dscache",
        description="Where pods see the linked data: an absolute path that is not, under or above a system "
        "directory (/bin, /etc, /usr, /var/run...).",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_shape(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, message in OLD_SHAPE.items():
                if key in data:
                    raise ValueError(message)
            if isinstance(data.get("versions"), dict):
                raise ValueError(f"spec.versions {OLD_VERSIONS}")
        return data

    @field_validator("versions")
    @classmethod
    def _unique(cls, v: list[VersionItem]) -> list[VersionItem]:
        seen: dict[str, int] = {}
        for i, item in enumerate(v):
            first = seen.setdefault(item.slot, i)
            if first != i:
                raise ValueError(
                    f"versions[{i}] repeats dataType/source {item.slot} of versions[{first}]: list each once"
                )
        return v

    @field_validator("versions")
    @classmethod
    def _apart(cls, v: list[VersionItem]) -> list[VersionItem]:
        """Refuse two items whose `<dataType>/<source>` paths are one path but for case, or one of
        which lies inside the other (see `slot_clash`), naming both items."""
        for i, item in enumerate(v):
            for j in range(i):
                clash = slot_clash(v[j].slot, item.slot)
                if clash is not None:
                    raise ValueError(
                        f"versions[{i}] ({item.slot}) {clash} versions[{j}] ({v[j].slot}){_APART[clash]}"
                    )
        return v

    @field_validator("versions")
    @classmethod
    def _distinct_env_names(cls, v: list[VersionItem]) -> list[VersionItem]:
        """Two items whose variables (envName, else `DSCACHE_<DT>_<SRC>` as `prepare` derives it) are
        one name would make every pod's `prepare` fail: refuse the spec instead, naming both items."""
        owner: dict[str, int] = {}
        for i, item in enumerate(v):
            name = item.env_name or derived_name(item.key)
            if name == ROOT_VAR:
                raise ValueError(f"versions[{i}] ({item.slot}): {ROOT_VAR} is the links root's variable")
            first = owner.setdefault(name, i)
            if first != i:
                raise ValueError(
                    f"versions[{i}] ({item.slot}) gets environment variable {name}, as versions[{first}] "
                    f"({v[first].slot}) does: set envName on one of them"
                )
        return v

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, v: str) -> str:
        refused = mount_path_refusal(v)
        if refused is not None:
            raise ValueError(refused)
        return v

    @model_validator(mode="after")
    def _revision_needs_files(self) -> DatasetCacheSpec:
        hf = self.source.hugging_face
        if hf is not None and hf.revision_from_version and self.layout != "Files":
            raise ValueError("source.huggingFace.revisionFromVersion requires layout: Files")
        return self

    @model_validator(mode="after")
    def _files_need_a_listing(self) -> DatasetCacheSpec:
        if self.source.http is not None and self.layout == "Files":
            raise ValueError(f"spec.layout: Files with spec.source.http: {HTTP_FILES}")
        return self

    @model_validator(mode="after")
    def _patterns_need_files(self) -> DatasetCacheSpec:
        hf = self.source.hugging_face
        if hf is not None and (hf.allow_patterns or hf.ignore_patterns) and self.layout != "Files":
            raise ValueError(
                "source.huggingFace.allowPatterns/ignorePatterns select files of layout: Files; "
                "the Archives layout installs whole archives"
            )
        return self

    def version_keys(self) -> list[VersionKey]:
        """The versions as sorted keys."""
        return sorted(item.key for item in self.versions)

    def version_map(self) -> dict[str, dict[str, str]]:
        """Read-only view `{dataType: {source: version}}`, for code that iterates data types."""
        out: dict[str, dict[str, str]] = {}
        for item in self.versions:
            out.setdefault(item.data_type, {})[item.source] = item.version
        return out

    def item(self, key: VersionKey) -> VersionItem | None:
        """The item of `key`'s dataType/source (any version), if the spec lists it."""
        return next((i for i in self.versions if i.slot == key.slot), None)


def format_path(parts: tuple[str | int, ...]) -> str:
    """Pure: a field path as Kubernetes writes it, e.g. ('spec', 'versions', 2, 'envName') ->
    `spec.versions[2].envName`."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p != "":
            out += f".{p}" if out else p
    return out


def unquoted_hint(value: object) -> str | None:
    """Pure: why a number or boolean stands where a string belongs, as YAML read it, or None for
    other values. YAML reads an unquoted `1` as an int, `2025.10` as the float 2025.1 (its trailing
    zero gone) and `yes`/`on`/`true` as booleans: the message shows the value YAML read and says to
    quote it."""
    if isinstance(value, bool):
        return f"YAML read the boolean {str(value).lower()}, not a string: write the value in quotes"
    if isinstance(value, float):
        return (
            f"YAML read the number {value!r}, not a string: write the value in quotes, e.g. "
            f'"{value!r}0" if you meant {value!r}0 (unquoted, YAML drops trailing zeros)'
        )
    if isinstance(value, int):
        return f'YAML read the number {value}, not a string: write it in quotes ("{value}")'
    return None


PATTERN_WORDS: dict[str, str] = {
    r"^https?://": f"must be an http:// or https:// URL, e.g. {ENDPOINT_EXAMPLE}",
    r"^/": "must be an absolute path (starting with '/'), e.g. /data/remote",
    r"^[a-z0-9]{3,24}$": "must be 3-24 lowercase ASCII letters and digits, e.g. mystorageaccount",
    r"^(\$root|\$web|[a-z0-9][a-z0-9-]{1,61}[a-z0-9])$": (
        "must be 3-63 lowercase ASCII letters, digits and '-', starting and ending with a letter or digit "
        "(or $root, $web), e.g. datasets"
    ),
    r"^[\w.-]+/[\w.-]+$": "must be OWNER/NAME (letters, digits, '_', '.' and '-'), e.g. allenai/molmospaces",
    DNS_SUBDOMAIN_PATTERN: (
        "must be a DNS subdomain name: lowercase ASCII letters, digits, '-' and '.', starting and ending "
        "with a letter or digit, at most 253 characters, e.g. high-priority"
    ),
    RESOURCE_QUANTITY_PATTERN: "must be a Kubernetes quantity, e.g. 500m, 2, 1.5, 4Gi or 100M",
    BYTE_QUANTITY_PATTERN: "must be bytes or a Kubernetes quantity such as 500Gi or 2T",
}
"""Every `pattern` a user can hit in the spec, in words with an example (errors never show a regex;
tests/dscache/api/test_input_words.py checks that each pattern of the spec's schema is here)."""


_BOUNDS = (
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_too_short",
    "string_too_long",
)


def _in_words(e: Any) -> str | None:
    """The message for a pattern error, in words (a bound's message with the value given), or None
    for other errors."""
    if e["type"] in _BOUNDS:
        return f"{e['msg']} (got {e['input']!r})"
    if e["type"] != "string_pattern_mismatch":
        return None
    words = PATTERN_WORDS.get(e["ctx"]["pattern"], "does not have the form this field takes")
    return f"{e['input']!r} {words}"


def format_errors(err: ValidationError, root: str) -> str:
    """One line per error, `<field path>: <message>` joined by '; '. A message that names its own
    path (`spec.linkStrategy is now ...`) is not prefixed again."""
    lines = []
    for e in err.errors():
        loc = format_path((root, *e["loc"]))
        msg = _in_words(e) or e["msg"].removeprefix("Value error, ")
        if e["type"] == "string_type":
            msg = unquoted_hint(e["input"]) or msg
        names_itself = bool(loc) and msg.startswith((f"{loc}.", f"{loc} "))
        lines.append(msg if names_itself else f"{loc}: {msg}")
    return "; ".join(lines)


def parse_spec(doc: Any, origin: str = "") -> DatasetCacheSpec:
    """Validate a bare spec dict or raise SpecError naming the field (`spec.<path>`)."""
    try:
        return DatasetCacheSpec.model_validate(doc)
    except ValidationError as err:
        message = format_errors(err, "spec")
        raise SpecError(f"{origin}: {message}" if origin else message) from None
