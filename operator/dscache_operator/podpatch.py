"""The mutating webhook's pod patch: pure, from (pod, DatasetCache, settings) to JSON patch ops.

Everything injected has a `dscache-` name, and the desired pod is built by replacing exactly those
items (init container, volumes, mounts, env, annotation), so the patch is idempotent: a pod that
already has them gets no ops. The workload containers mount the links, the cache (read-only) and the
scratch at the same paths as the init container, because the links are relative symlinks into them.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscache.api.envnames import EnvNameError, build_env
from dscache.api.names import NameError_, VersionKey, parse_version_arg
from dscache.api.podsettings import ContainerSettings, PrepareSettings
from dscache.api.sizes import parse_size
from dscache.api.spec import DatasetCacheSpec, Scratch, ScratchMode
from dscache_operator import names
from dscache_operator.hostpaths import HostPathError, check_host_path
from dscache_operator.objects import CONTAINER_SECURITY
from dscache_operator.podsettings import CONTAINER_FIELDS, apply_to_container, combine
from dscache_operator.settings import Settings
from dscache_operator.volume import get_claim_name

INIT_CONTAINER = "dscache-prepare"
SCRATCH_SETUP = "dscache-scratch-setup"
VOLUME_CACHE = "dscache-cache"
VOLUME_LINKS = "dscache-links"
VOLUME_SCRATCH = "dscache-scratch"
VOLUME_NO_TOKEN = "dscache-no-token"
OUR_VOLUMES = (VOLUME_CACHE, VOLUME_LINKS, VOLUME_SCRATCH, VOLUME_NO_TOKEN)
VOLUME_ROOT = "/var/lib/dscache"
CACHE_PATH = f"{VOLUME_ROOT}/cache"
SCRATCH_PATH = f"{VOLUME_ROOT}/scratch"

JsonPatch = list[dict[str, Any]]


class Denied(ValueError):
    """The pod cannot be admitted; the message says what to fix."""


@dataclass(frozen=True)
class ScratchChoice:
    """The scratch a pod gets: the resource's default or the pod's `dscache.io/scratch` annotation."""

    mode: ScratchMode
    size_limit: str | None = None
    host_path: str | None = None
    max_bytes: int | None = None


SCRATCH_MODES: dict[str, ScratchMode] = {"none": "None", "emptydir": "EmptyDir", "hostpath": "HostPath"}
"""The annotation's modes in any case (`EmptyDir` as in the spec, `emptyDir` as before)."""


def parse_scratch(value: str | None, default: Scratch) -> ScratchChoice:
    """`None`, `EmptyDir`, `EmptyDir:<sizeLimit>`, `HostPath` or `HostPath:<path>`, the mode in any case
    (absent: the default)."""
    host = default.host_path
    if value is None:
        value = default.mode
    word, _, arg = value.strip().partition(":")
    mode = SCRATCH_MODES.get(word.lower())
    where = f"annotation {names.ANNOTATION_SCRATCH}={value!r}"
    if mode == "None" and not arg:
        return ScratchChoice("None")
    if mode == "EmptyDir":
        size = arg or default.size_limit
        if size is not None:
            try:
                parse_size(size)
            except ValueError:
                raise Denied(f"{where}: {size!r} is not a size such as 50Gi") from None
        return ScratchChoice("EmptyDir", size_limit=size, max_bytes=parse_size(size) if size else None)
    if mode == "HostPath":
        path = arg or (host.path if host else None)
        if path is None:
            raise Denied(f"{where}: the DatasetCache sets no scratch.hostPath; use HostPath:/some/dir")
        if not path.startswith("/"):
            raise Denied(f"{where}: the host path must be absolute")
        return ScratchChoice("HostPath", host_path=path, max_bytes=host.max_bytes if host else None)
    raise Denied(f"{where}: use None, EmptyDir[:SIZE] or HostPath[:/DIR]")


def allowed_host_scratch(
    scratch: ScratchChoice, annotation: str | None, cache_name: str, settings: Settings
) -> ScratchChoice:
    """`scratch` with its host path in normal form if the admin allows it; raises Denied naming where
    the path came from (the pod's annotation or the DatasetCache). Other modes pass unchanged."""
    if scratch.mode != "HostPath" or scratch.host_path is None:
        return scratch
    if annotation is not None and annotation.strip().partition(":")[2]:
        where = f"annotation {names.ANNOTATION_SCRATCH}={annotation!r}"
    else:
        where = f"DatasetCache {cache_name} spec.scratch.hostPath.path"
    try:
        path = check_host_path(scratch.host_path, settings.scratch_host_paths)
    except HostPathError as err:
        raise Denied(f"{where}: {err}") from None
    return dataclasses.replace(scratch, host_path=path)


def parse_pins(value: str | None) -> list[VersionKey]:
    """`DT/SRC=VER` entries of the pod's `dscache.io/versions` annotation, comma-separated."""
    pins: dict[str, VersionKey] = {}
    for text in (value or "").split(","):
        if not text.strip():
            continue
        try:
            key = parse_version_arg(text.strip(), "entry")
        except NameError_ as err:
            raise Denied(f"annotation {names.ANNOTATION_VERSIONS}: {err}") from None
        if pins.setdefault(key.slot, key) != key:
            raise Denied(f"annotation {names.ANNOTATION_VERSIONS} pins {key.slot} twice")
    return list(pins.values())


def installed_keys(status: dict[str, Any]) -> list[VersionKey]:
    """The versions the cache's ref points at now (status.installed, written by the installer)."""
    return [VersionKey(v["dataType"], v["source"], v["version"]) for v in status.get("installed") or []]


@dataclass(frozen=True)
class Resolution:
    """What the pod links: prepare's selection args, each version with its envName (or None), and
    the versions it may link."""

    prepare_args: list[str]
    env_sources: list[tuple[VersionKey, str | None]]
    resolved: list[VersionKey]


def resolve(cache: dict[str, Any], spec: DatasetCacheSpec, pins: list[VersionKey]) -> Resolution:
    """The cache's ref when nothing is pinned; else explicit versions (pins over the spec's versions).

    With the ref, the pod links what the ref points at when its init container runs: the installed
    versions, or the requested ones once an install in progress publishes them; both are recorded so
    gc keeps whichever it links.
    """
    meta = cache["metadata"]
    requested = spec.version_keys()
    installed = installed_keys(cache.get("status") or {})

    def wanted(keys: list[VersionKey]) -> list[tuple[VersionKey, str | None]]:
        return [(k, item.env_name if (item := spec.item(k)) else None) for k in keys]

    if not pins:
        ref = names.ref_name(meta["namespace"], meta["name"])
        return Resolution(["--ref", ref], wanted(requested), sorted({*requested, *installed}, key=str))
    known = {*requested, *installed}
    for pin in pins:
        if pin not in known:
            offer = ", ".join(sorted(str(k) for k in known if k.slot == pin.slot)) or "none"
            raise Denied(
                f"annotation {names.ANNOTATION_VERSIONS} pins {pin}, which DatasetCache {meta['name']} "
                f"neither installs nor requests (versions of {pin.slot} it has: {offer}); pin one of "
                "those, or add the version to the DatasetCache's spec.versions first"
            )
    per_file = sorted(item.slot for item in spec.versions if item.link == "PerFile")
    if per_file:  # `prepare --version` makes directory links; only the ref carries link strategies
        raise Denied(
            f"annotation {names.ANNOTATION_VERSIONS}: DatasetCache {meta['name']} links "
            f"{', '.join(per_file)} PerFile, which pinned versions cannot have yet; remove the annotation "
            "(the pod then follows the DatasetCache's versions)"
        )
    by_slot = {k.slot: k for k in requested} | {p.slot: p for p in pins}
    keys = sorted(by_slot.values(), key=str)
    return Resolution([a for k in keys for a in ("--version", str(k))], wanted(keys), keys)


def build_env_vars(mount_path: str, sources: list[tuple[VersionKey, str | None]]) -> list[dict[str, str]]:
    """DSCACHE_ROOT and one variable per source: the stable link paths the init container makes."""
    try:
        env = build_env(Path(mount_path), sources)
    except EnvNameError as err:
        raise Denied(f"DatasetCache env: {err}") from None
    return [{"name": k, "value": v} for k, v in env.items()]


def build_volumes(claim: str, scratch: ScratchChoice) -> list[dict[str, Any]]:
    vols: list[dict[str, Any]] = [
        {"name": VOLUME_CACHE, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}},
        {"name": VOLUME_LINKS, "emptyDir": {}},
    ]
    if scratch.mode == "EmptyDir":
        empty = {"sizeLimit": scratch.size_limit} if scratch.size_limit else {}
        vols.append({"name": VOLUME_SCRATCH, "emptyDir": empty})
    elif scratch.mode == "HostPath":
        host = {"path": scratch.host_path, "type": "DirectoryOrCreate"}
        vols.append({"name": VOLUME_SCRATCH, "hostPath": host})
    return vols


def build_mounts(mount_path: str, scratch: ScratchChoice) -> list[dict[str, Any]]:
    """The same mounts in the init container and the workload: relative links resolve in both."""
    mounts: list[dict[str, Any]] = [
        {"name": VOLUME_CACHE, "mountPath": CACHE_PATH, "readOnly": True},
        {"name": VOLUME_LINKS, "mountPath": mount_path},
    ]
    if scratch.mode != "None":
        mounts.append({"name": VOLUME_SCRATCH, "mountPath": SCRATCH_PATH})
    return mounts


# Where Kubernetes mounts a pod's ServiceAccount token. Its ServiceAccount admission plugin adds that
# mount to every container that has none at this path, unless the pod opts out; when a webhook changes
# a pod the API server runs its built-in mutating plugins again, so our init container would get the
# token too (seen on the test bed: tests/cluster/test_trust.py). prepare needs no API access: an empty
# read-only volume at the path keeps the pod's token out of the init container. Its sizeLimit must
# hold an empty directory as the kubelet measures it (du: one 4 KiB block on ext4): at 1Ki the
# kubelet's eviction manager evicted pods that lived past its first pass (tests/cluster/test_scale.py).
SERVICE_ACCOUNT_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_GUARD_LIMIT = "1Mi"


def token_guard() -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume and the init container's mount that keep the pod's token out of it."""
    volume = {"name": VOLUME_NO_TOKEN, "emptyDir": {"sizeLimit": TOKEN_GUARD_LIMIT}}
    mount = {"name": VOLUME_NO_TOKEN, "mountPath": SERVICE_ACCOUNT_TOKEN_PATH, "readOnly": True}
    return volume, mount


# The container fields the API server defaults when it decodes a patched pod (before any later
# webhook or policy sees it), given here as it would: a reinvocation (reinvocationPolicy IfNeeded)
# then finds dscache's init containers unchanged and answers no patch.
TERMINATION_MESSAGE = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}


def init_security(settings: Settings, pod_security: dict[str, Any]) -> dict[str, Any]:
    """The init container's securityContext: hardened, running as the operator's user.

    The user and group are the operator's `run_as_user` where the pod's own securityContext leaves
    them to the image (whose USER is that same uid:gid by default); a runAsUser or runAsGroup the
    pod sets applies to the init container unchanged, as to every container of the pod.
    """
    security: dict[str, Any] = dict(CONTAINER_SECURITY)
    if "runAsUser" not in pod_security:
        security["runAsUser"] = settings.run_as_user
        if "runAsGroup" not in pod_security:
            security["runAsGroup"] = settings.run_as_user
    return security


def build_init_container(
    settings: Settings,
    mount_path: str,
    resolution: Resolution,
    scratch: ScratchChoice,
    pod_security: dict[str, Any],
    *,
    prepare: PrepareSettings | None = None,
) -> dict[str, Any]:
    """`dscache prepare` with the cache's spec.prepare (env, envFrom, resources) over the operator's."""
    args = ["prepare", "--cache", CACHE_PATH, "--links", mount_path, *resolution.prepare_args]
    if scratch.mode != "None":
        args += ["--scratch", SCRATCH_PATH]
        if scratch.max_bytes is not None:
            args += ["--scratch-max-bytes", str(scratch.max_bytes)]
    args += ["--wait", f"{settings.prepare_wait:g}"]
    container: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": settings.init_image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": args,
        "volumeMounts": [*build_mounts(mount_path, scratch), token_guard()[1]],
        "securityContext": init_security(settings, pod_security),
        **TERMINATION_MESSAGE,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return apply_to_container(container, prepare_settings(settings, prepare))


def prepare_settings(settings: Settings, own: PrepareSettings | None) -> dict[str, Any]:
    """The init container's effective env, envFrom and resources: the cache's over the operator's."""
    default = ContainerSettings(
        env=list(settings.prepare_env) if settings.prepare_env is not None else None,
        env_from=list(settings.prepare_env_from) if settings.prepare_env_from is not None else None,
        resources=settings.prepare_resources or None,
    )
    return combine(default, own or PrepareSettings(), CONTAINER_FIELDS)


# The scratch-setup container's program, in Python: the init image has no shell (Dockerfile, target
# `prepare`). argv[1] is the scratch directory.
SCRATCH_SETUP_SCRIPT = (
    "import os, sys\nif os.stat(sys.argv[1]).st_uid == 0:\n    os.chmod(sys.argv[1], 0o1777)\n"
)


def build_scratch_setup(settings: Settings) -> dict[str, Any]:
    """hostPath scratch only: an init container that lets every user write the node's scratch dir.

    The kubelet creates a missing hostPath directory owned by root, mode 0755, where the non-root
    init container cannot write. This one runs as uid 0 with every capability dropped (it can only
    change what uid 0 owns) and sets such a directory to mode 1777, like /tmp, so init containers of
    any user share it (initcontainer/dscache/prepare/shared.py); a directory with another owner,
    prepared by the node's admin, is left alone. hostPath volumes already need a `privileged` Pod
    Security level, so running as root adds no requirement. The pod's service-account token is kept
    out of it, as out of the dscache init container.
    """
    return {
        "name": SCRATCH_SETUP,
        "image": settings.init_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["python3", "-I", "-c", SCRATCH_SETUP_SCRIPT, SCRATCH_PATH],
        "volumeMounts": [{"name": VOLUME_SCRATCH, "mountPath": SCRATCH_PATH}, token_guard()[1]],
        "securityContext": {**CONTAINER_SECURITY, "runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False},
        **TERMINATION_MESSAGE,
    }


def _check_mount_path(mount_path: str, containers: list[dict[str, Any]]) -> None:
    """A mountPath over our volume root, or one a container already uses, would hide data."""
    if Path(VOLUME_ROOT).is_relative_to(mount_path) or Path(mount_path).is_relative_to(VOLUME_ROOT):
        raise Denied(f"spec.mountPath {mount_path} overlaps {VOLUME_ROOT}, where dscache mounts its volumes")
    for c in containers:
        for m in c.get("volumeMounts") or []:
            if m.get("mountPath") == mount_path and m.get("name") not in OUR_VOLUMES:
                raise Denied(
                    f"container {c['name']} already mounts volume {m.get('name')} at {mount_path}, where the "
                    "DatasetCache's data goes: move that mount or change the DatasetCache's spec.mountPath"
                )


def _merge(items: list[dict[str, Any]], ours: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """`items` without the entries ours replaces (same `key`), with ours appended."""
    replaced = {o[key] for o in ours}
    return [i for i in items if i.get(key) not in replaced] + ours


def desired_pod(
    pod: dict[str, Any], cache: dict[str, Any], spec: DatasetCacheSpec, settings: Settings
) -> dict[str, Any]:
    """The pod with dscache injected (raises Denied); a pure, idempotent function of its inputs.

    The input is not modified; the result shares with it what injection leaves unchanged (the other
    volumes, init containers, mounts, env and fields), so treat both as read-only. A deep copy of the
    pod was half of a review's time (0.65 ms on the 2-core machine).
    """
    annotations = pod.get("metadata", {}).get("annotations") or {}
    scratch = parse_scratch(annotations.get(names.ANNOTATION_SCRATCH), spec.scratch)
    scratch = allowed_host_scratch(
        scratch, annotations.get(names.ANNOTATION_SCRATCH), cache["metadata"]["name"], settings
    )
    resolution = resolve(cache, spec, parse_pins(annotations.get(names.ANNOTATION_VERSIONS)))
    mount_path = spec.mount_path.rstrip("/") or "/"
    pod_spec = dict(pod.get("spec") or {})
    new = {**pod, "spec": pod_spec, "metadata": dict(pod.get("metadata") or {})}
    containers = [dict(c) for c in pod_spec.get("containers") or []]
    if "containers" in pod_spec:
        pod_spec["containers"] = containers
    _check_mount_path(mount_path, containers)
    claim = get_claim_name(cache["metadata"]["name"], spec)
    volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in OUR_VOLUMES]
    pod_spec["volumes"] = [*volumes, *build_volumes(claim, scratch), token_guard()[0]]
    init = build_init_container(
        settings, mount_path, resolution, scratch, pod_spec.get("securityContext") or {}, prepare=spec.prepare
    )
    ours = [build_scratch_setup(settings), init] if scratch.mode == "HostPath" else [init]
    inits = [c for c in pod_spec.get("initContainers") or [] if c.get("name") != SCRATCH_SETUP]
    at = next((i for i, c in enumerate(inits) if c.get("name") == INIT_CONTAINER), None)
    pod_spec["initContainers"] = [*ours, *inits] if at is None else [*inits[:at], *ours, *inits[at + 1 :]]
    env = build_env_vars(mount_path, resolution.env_sources)
    mounts = build_mounts(mount_path, scratch)
    for c in containers:
        kept = [m for m in c.get("volumeMounts") or [] if m.get("name") not in OUR_VOLUMES]
        c["volumeMounts"] = kept + mounts
        c["env"] = _merge(c.get("env") or [], env, "name")
    new["metadata"]["annotations"] = {
        **annotations,
        names.ANNOTATION_RESOLVED_VERSIONS: ",".join(str(k) for k in resolution.resolved),
    }
    return new


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def build_patch(
    pod: dict[str, Any], cache: dict[str, Any], spec: DatasetCacheSpec, settings: Settings
) -> JsonPatch:
    """JSON patch ops turning `pod` into `desired_pod(...)`; empty when it is already injected."""
    want = desired_pod(pod, cache, spec, settings)
    ops: JsonPatch = []

    def put(path: str, old: Any, new: Any) -> None:
        if old != new:
            ops.append({"op": "add", "path": path, "value": new})

    old_meta, new_meta = pod.get("metadata") or {}, want["metadata"]
    if "annotations" not in old_meta or old_meta["annotations"] is None:
        put("/metadata/annotations", None, new_meta["annotations"])
    else:
        key = names.ANNOTATION_RESOLVED_VERSIONS
        old_value, new_value = old_meta["annotations"].get(key), new_meta["annotations"][key]
        put(f"/metadata/annotations/{_escape(key)}", old_value, new_value)
    old_spec, new_spec = pod.get("spec") or {}, want["spec"]
    for field in ("volumes", "initContainers"):
        put(f"/spec/{field}", old_spec.get(field), new_spec[field])
    containers = zip(old_spec.get("containers") or [], new_spec.get("containers") or [], strict=True)
    for i, (old_c, new_c) in enumerate(containers):
        for field in ("volumeMounts", "env"):
            put(f"/spec/containers/{i}/{field}", old_c.get(field), new_c[field])
    return ops


def apply_patch(doc: dict[str, Any], ops: JsonPatch) -> dict[str, Any]:
    """A copy of `doc` with `add` ops applied (the only op build_patch emits): for tests and kopf."""
    out = copy.deepcopy(doc)
    for op in ops:
        assert op["op"] == "add", op
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = out
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = copy.deepcopy(op["value"])
    return out
