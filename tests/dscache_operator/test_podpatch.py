"""The pod patch of the mutating webhook: what a labelled pod gets, idempotence, and denials."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dscache.api.names import parse_version_arg
from dscache.api.spec import SpecError, parse_spec
from dscache_operator.podpatch import Denied, apply_patch, build_patch, desired_pod
from dscache_operator.settings import Settings
from tests.factories import version_items

SETTINGS = Settings(
    image="registry.example/dscache:1.2.3",
    prepare_wait=600,
    prepare_resources={"requests": {"cpu": "50m"}},
    scratch_host_paths=("/mnt/nvme", "/mnt/fast", "/scratch"),
)
SPEC: dict[str, Any] = {
    "source": {"s3": {"bucket": "b", "secretRef": {"name": "creds"}}},
    "versions": version_items(
        "objects/thor=v2",
        "objects/procthor/extra=v1",
        "scenes/ithor=v7",
        envName={"scenes/ithor": "SCENES"},
        link={"scenes/ithor": "PerFile"},
    ),
    "volume": {"claimName": "shared"},
}
# pins need directory links (see the PerFile test)
DIRECTORY_ONLY = {
    **SPEC,
    "versions": version_items(
        "objects/thor=v2", "objects/procthor/extra=v1", "scenes/ithor=v7", envName={"scenes/ithor": "SCENES"}
    ),
}


def cache(spec: dict[str, Any] | None = None, installed: tuple[str, ...] = ()) -> dict[str, Any]:
    keys = [parse_version_arg(k) for k in installed]
    status = {
        "phase": "Ready",
        "installed": [{"dataType": k.data_type, "source": k.source, "version": k.version} for k in keys],
    }
    return {
        "metadata": {"name": "objs", "namespace": "ml", "generation": 1},
        "spec": spec or SPEC,
        "status": status,
    }


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "train", "namespace": "ml", "labels": {"dscache.io/cache": "objs"}}
    if annotations is not None:
        meta["annotations"] = annotations
    containers = [
        {"name": "main", "image": "trainer", "env": [{"name": "LR", "value": "0.1"}]},
        {"name": "sidecar", "image": "logger", "volumeMounts": [{"name": "logs", "mountPath": "/logs"}]},
    ]
    return {"metadata": meta, "spec": {"containers": containers, **spec}}


def inject(
    p: dict[str, Any], c: dict[str, Any] | None = None, settings: Settings = SETTINGS
) -> dict[str, Any]:
    c = c or cache()
    return apply_patch(p, build_patch(p, c, parse_spec(c["spec"]), settings))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_labelled_pod_gets_init_container_volumes_mounts_env_and_annotation() -> None:
    out = inject(pod())
    [init] = out["spec"]["initContainers"]
    assert init["name"] == "dscache-prepare" and init["image"] == SETTINGS.image
    assert init["args"] == [
        "prepare",
        "--cache",
        "/var/lib/dscache/cache",
        "--links",
        "/dscache",
        "--ref",
        "ml.objs",
        "--wait",
        "600",
    ]
    assert init["resources"] == {"requests": {"cpu": "50m"}}
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["dscache-cache"]["persistentVolumeClaim"] == {"claimName": "shared", "readOnly": True}
    assert vols["dscache-links"] == {"name": "dscache-links", "emptyDir": {}}
    assert "dscache-scratch" not in vols
    for c in out["spec"]["containers"]:
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["dscache-links"]["mountPath"] == "/dscache"
        assert mounts["dscache-cache"] == {
            "name": "dscache-cache",
            "mountPath": "/var/lib/dscache/cache",
            "readOnly": True,
        }
        assert env_of(c)["DSCACHE_ROOT"] == "/dscache"
        assert env_of(c)["DSCACHE_OBJECTS_THOR"] == "/dscache/objects/thor"
        assert env_of(c)["DSCACHE_OBJECTS_PROCTHOR_EXTRA"] == "/dscache/objects/procthor/extra"
        assert env_of(c)["SCENES"] == "/dscache/scenes/ithor"  # envNames honoured
    assert env_of(out["spec"]["containers"][0])["LR"] == "0.1"
    assert {"name": "logs", "mountPath": "/logs"} in out["spec"]["containers"][1]["volumeMounts"]
    assert out["metadata"]["annotations"]["dscache.io/resolved-versions"] == (
        "objects/procthor/extra=v1,objects/thor=v2,scenes/ithor=v7"
    )


def test_workload_gets_no_credentials_or_service_account_changes() -> None:
    out = inject(pod())
    text = repr(out)
    assert "creds" not in text and "secretKeyRef" not in text
    assert "serviceAccountName" not in out["spec"]


@pytest.mark.parametrize(
    "p",
    [
        pod(),
        pod({"dscache.io/scratch": "hostPath:/mnt/fast", "dscache.io/versions": "objects/thor=v2"}),
        pod({"other": "x"}, initContainers=[{"name": "setup", "image": "busybox"}]),
    ],
    ids=["plain", "annotated", "with-init"],
)
def test_injection_is_idempotent(p: dict[str, Any]) -> None:
    c = cache(DIRECTORY_ONLY)
    once = inject(p, c)
    assert build_patch(once, c, parse_spec(c["spec"]), SETTINGS) == []
    assert inject(once, c) == once


def api_server_defaults(p: dict[str, Any]) -> dict[str, Any]:
    """What the API server's defaulting sets on a pod's containers when it decodes a patched pod."""
    out = copy.deepcopy(p)
    for kind in ("initContainers", "containers"):
        for c in out["spec"].get(kind) or []:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "IfNotPresent")
    return out


@pytest.mark.parametrize(
    "p",
    [pod(), pod({"dscache.io/scratch": "hostPath:/mnt/fast"})],
    ids=["plain", "host-scratch"],
)
def test_a_reinvocation_after_the_api_servers_defaulting_gets_no_patch(p: dict[str, Any]) -> None:
    """At reinvocationPolicy IfNeeded the webhook sees its own injection as the API server stored it."""
    c = cache()
    stored = api_server_defaults(inject(p, c))
    assert build_patch(stored, c, parse_spec(c["spec"]), SETTINGS) == []


def test_reinjection_with_another_scratch_replaces_ours_only() -> None:
    once = inject(pod({"dscache.io/scratch": "emptyDir:1Gi"}))
    changed = copy.deepcopy(once)
    changed["metadata"]["annotations"]["dscache.io/scratch"] = "none"
    again = inject(changed)
    assert [v["name"] for v in again["spec"]["volumes"]] == [
        "dscache-cache",
        "dscache-links",
        "dscache-no-token",
    ]
    assert len(again["spec"]["initContainers"]) == 1
    assert "--scratch" not in again["spec"]["initContainers"][0]["args"]
    assert [m["name"] for m in again["spec"]["containers"][1]["volumeMounts"]] == [
        "logs",
        "dscache-cache",
        "dscache-links",
    ]


def test_our_init_container_runs_before_the_pods_own() -> None:
    out = inject(pod(initContainers=[{"name": "setup", "image": "busybox"}]))
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["dscache-prepare", "setup"]


def test_patch_ops_are_adds_at_known_paths_only() -> None:
    c = cache()
    ops = build_patch(pod({"a": "b"}), c, parse_spec(c["spec"]), SETTINGS)
    assert {op["op"] for op in ops} == {"add"}
    assert {op["path"] for op in ops} == {
        "/metadata/annotations/dscache.io~1resolved-versions",
        "/spec/volumes",
        "/spec/initContainers",
        "/spec/containers/0/volumeMounts",
        "/spec/containers/0/env",
        "/spec/containers/1/volumeMounts",
        "/spec/containers/1/env",
    }


def test_scratch_default_from_the_resource_emptydir_with_size_limit() -> None:
    spec = {**SPEC, "scratch": {"mode": "EmptyDir", "sizeLimit": "10Gi"}}
    out = inject(pod(), cache(spec))
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["dscache-scratch"]["emptyDir"] == {"sizeLimit": "10Gi"}
    args = out["spec"]["initContainers"][0]["args"]
    assert args[args.index("--scratch") + 1] == "/var/lib/dscache/scratch"
    # prepare stays under the emptyDir's limit (else the kubelet evicts the pod): it falls back to links
    assert args[args.index("--scratch-max-bytes") + 1] == str(10 * 1024**3)
    for c in out["spec"]["containers"]:
        assert {"name": "dscache-scratch", "mountPath": "/var/lib/dscache/scratch"} in c["volumeMounts"]


@pytest.mark.parametrize(("max_bytes", "arg"), [("500Gi", str(500 * 1024**3)), ("2T", str(2 * 10**12))])
def test_scratch_hostpath_budget_is_a_quantity_like_every_other_size(max_bytes: str, arg: str) -> None:
    spec = {**SPEC, "scratch": {"mode": "HostPath", "hostPath": {"path": "/mnt/nvme", "maxBytes": max_bytes}}}
    args = inject(pod(), cache(spec))["spec"]["initContainers"][1]["args"]
    assert args[args.index("--scratch-max-bytes") + 1] == arg


@pytest.mark.parametrize("max_bytes", ["-1", -1, "500m", "lots", "64MB"])
def test_scratch_hostpath_budget_that_is_no_size_is_refused_naming_the_field(max_bytes: object) -> None:
    spec = {**SPEC, "scratch": {"mode": "HostPath", "hostPath": {"path": "/mnt/nvme", "maxBytes": max_bytes}}}
    with pytest.raises(
        SpecError, match=r"spec\.scratch\.hostPath\.maxBytes: .*Kubernetes quantity such as 500Gi"
    ):
        parse_spec(spec)


def test_scratch_default_hostpath_with_budget() -> None:
    spec = {**SPEC, "scratch": {"mode": "HostPath", "hostPath": {"path": "/mnt/nvme", "maxBytes": 1000}}}
    out = inject(pod(), cache(spec))
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["dscache-scratch"]["hostPath"] == {"path": "/mnt/nvme", "type": "DirectoryOrCreate"}
    setup, prepare = out["spec"]["initContainers"]
    args = prepare["args"]
    assert prepare["name"] == "dscache-prepare"
    assert args[args.index("--scratch-max-bytes") + 1] == "1000"
    # The kubelet creates the hostPath dir root-owned 0755: a capability-free root container opens
    # it to every user (mode 1777) before the non-root prepare, and nothing else.
    assert setup["name"] == "dscache-scratch-setup"
    assert setup["command"] == [  # Python: the init image has no shell
        "python3",
        "-I",
        "-c",
        "import os, sys\nif os.stat(sys.argv[1]).st_uid == 0:\n    os.chmod(sys.argv[1], 0o1777)\n",
        "/var/lib/dscache/scratch",
    ]
    assert setup["volumeMounts"] == [  # the scratch dir, and no service-account token
        {"name": "dscache-scratch", "mountPath": "/var/lib/dscache/scratch"},
        {
            "name": "dscache-no-token",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        },
    ]
    sc = setup["securityContext"]
    assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    again = inject(out, cache(spec))  # re-invocation: still one of each
    assert [c["name"] for c in again["spec"]["initContainers"]] == [
        "dscache-scratch-setup",
        "dscache-prepare",
    ]


@pytest.mark.parametrize(
    ("value", "volume"),
    [
        ("None", None),
        ("EmptyDir", {"emptyDir": {}}),
        ("EmptyDir:2Gi", {"emptyDir": {"sizeLimit": "2Gi"}}),
        ("HostPath:/scratch", {"hostPath": {"path": "/scratch", "type": "DirectoryOrCreate"}}),
        # the annotation's spelling before the spec's enums became CamelCase still works
        ("none", None),
        ("emptyDir:2Gi", {"emptyDir": {"sizeLimit": "2Gi"}}),
        ("hostPath:/scratch", {"hostPath": {"path": "/scratch", "type": "DirectoryOrCreate"}}),
    ],
)
def test_scratch_annotation_overrides_the_default(value: str, volume: dict[str, Any] | None) -> None:
    spec = {**SPEC, "scratch": {"mode": "HostPath", "hostPath": {"path": "/mnt/nvme"}}}
    out = inject(pod({"dscache.io/scratch": value}), cache(spec))
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    if volume is None:
        assert "dscache-scratch" not in vols
        assert "--scratch" not in out["spec"]["initContainers"][0]["args"]
    else:
        assert {k: v for k, v in vols["dscache-scratch"].items() if k != "name"} == volume


def test_hostpath_annotation_uses_the_resources_path() -> None:
    spec = {**SPEC, "scratch": {"mode": "None", "hostPath": None}}
    with pytest.raises(Denied, match=r"sets no scratch\.hostPath"):
        inject(pod({"dscache.io/scratch": "hostPath"}), cache(spec))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tmpfs", "use None, EmptyDir"),
        ("emptyDir:lots", "not a size"),
        ("hostPath:relative", "must be absolute"),
    ],
)
def test_bad_scratch_annotation_is_denied(value: str, message: str) -> None:
    with pytest.raises(Denied, match=message):
        inject(pod({"dscache.io/scratch": value}))


def test_pinned_versions_override_their_slots_and_keep_the_others() -> None:
    c = cache(DIRECTORY_ONLY, installed=("objects/thor=v1", "objects/procthor/extra=v1", "scenes/ithor=v7"))
    out = inject(pod({"dscache.io/versions": "objects/thor=v1"}), c)
    args = out["spec"]["initContainers"][0]["args"]
    assert "--ref" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--version"] == [
        "objects/procthor/extra=v1",
        "objects/thor=v1",
        "scenes/ithor=v7",
    ]
    assert out["metadata"]["annotations"]["dscache.io/resolved-versions"] == (
        "objects/procthor/extra=v1,objects/thor=v1,scenes/ithor=v7"
    )


def test_pinning_a_requested_version_not_yet_installed_is_allowed() -> None:
    c = cache(DIRECTORY_ONLY, installed=("objects/thor=v1",))
    out = inject(pod({"dscache.io/versions": "objects/thor=v2"}), c)
    assert "objects/thor=v2" in out["metadata"]["annotations"]["dscache.io/resolved-versions"]


def test_pinning_a_version_neither_installed_nor_requested_is_denied_with_the_choices() -> None:
    c = cache(installed=("objects/thor=v1",))
    with pytest.raises(Denied) as err:
        inject(pod({"dscache.io/versions": "objects/thor=v9"}), c)
    message = str(err.value)
    assert "objects/thor=v9" in message and "objects/thor=v1, objects/thor=v2" in message
    assert "spec.versions" in message


def test_pins_are_denied_while_the_cache_links_a_data_type_per_file() -> None:
    """Pinned pods get `prepare --version`, which makes directory links: `../` between files would break."""
    with pytest.raises(Denied, match="links scenes/ithor PerFile"):
        inject(pod({"dscache.io/versions": "objects/thor=v2"}))


@pytest.mark.parametrize(
    ("value", "message"),
    [("objects/thor", "DT/SRC=VER|version"), ("objects/thor=v1,objects/thor=v2", "pins objects/thor twice")],
)
def test_malformed_pins_are_denied(value: str, message: str) -> None:
    with pytest.raises(Denied, match=message):
        inject(pod({"dscache.io/versions": value}), cache(installed=("objects/thor=v1",)))


def test_unpinned_pod_records_installed_and_requested_versions_during_an_update() -> None:
    """Its init container follows the ref, which moves from v1 to v2 when the install finishes."""
    out = inject(pod(), cache(installed=("objects/thor=v1",)))
    assert out["metadata"]["annotations"]["dscache.io/resolved-versions"] == (
        "objects/procthor/extra=v1,objects/thor=v1,objects/thor=v2,scenes/ithor=v7"
    )


def test_mount_path_from_the_resource() -> None:
    out = inject(pod(), cache({**SPEC, "mountPath": "/data/sets/"}))
    assert env_of(out["spec"]["containers"][0])["DSCACHE_OBJECTS_THOR"] == "/data/sets/objects/thor"
    args = out["spec"]["initContainers"][0]["args"]
    assert args[args.index("--links") + 1] == "/data/sets"


def test_a_container_mount_at_the_mount_path_is_denied() -> None:
    p = pod()
    p["spec"]["containers"][1]["volumeMounts"].append({"name": "data", "mountPath": "/dscache"})
    with pytest.raises(Denied, match="container sidecar already mounts volume data at /dscache"):
        inject(p)


@pytest.mark.parametrize("path", ["/var/lib/dscache", "/var/lib", "/var/lib/dscache/cache/x"])
def test_mount_path_over_our_volumes_is_denied(path: str) -> None:
    with pytest.raises(Denied, match="overlaps /var/lib/dscache"):
        inject(pod(), cache({**SPEC, "mountPath": path}))


def test_env_name_collision_is_denied() -> None:
    spec = {
        **SPEC,
        "versions": version_items(
            "objects/thor=v2", "scenes/ithor=v7", envName={"scenes/ithor": "DSCACHE_OBJECTS_THOR"}
        ),
    }
    with pytest.raises(SpecError, match=r"versions\[1\] .* DSCACHE_OBJECTS_THOR, as versions\[0\]"):
        parse_spec(spec)  # the DatasetCache itself is refused now
    # one stored before that rule (never validated by it): its pods are still denied
    valid = parse_spec({**SPEC, "versions": version_items("objects/thor=v2", "scenes/ithor=v7")})
    clash = valid.versions[1].model_copy(update={"env_name": "DSCACHE_OBJECTS_THOR"})
    stored = valid.model_copy(update={"versions": [valid.versions[0], clash]})
    with pytest.raises(Denied, match="DSCACHE_OBJECTS_THOR is already used"):
        build_patch(pod(), cache(spec), stored, SETTINGS)


def test_our_env_wins_over_a_containers_own_value() -> None:
    p = pod()
    p["spec"]["containers"][0]["env"].append({"name": "DSCACHE_ROOT", "value": "/elsewhere"})
    out = inject(p)
    names = [e["name"] for e in out["spec"]["containers"][0]["env"]]
    assert (
        names.count("DSCACHE_ROOT") == 1
        and env_of(out["spec"]["containers"][0])["DSCACHE_ROOT"] == "/dscache"
    )


def test_created_volume_claim_name() -> None:
    out = inject(pod(), cache({**SPEC, "volume": {"create": {"size": "1Gi"}}}))
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["dscache-cache"]["persistentVolumeClaim"]["claimName"] == "objs-dscache"


def test_init_container_pull_policy_and_user_are_the_operators() -> None:
    settings = Settings(image_pull_policy="Never", run_as_user=4321)
    [init] = inject(pod(), settings=settings)["spec"]["initContainers"]
    assert init["imagePullPolicy"] == "Never"
    assert init["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": 4321,
        "runAsGroup": 4321,
    }


@pytest.mark.parametrize(
    ("pod_security", "identity"),
    [
        ({"runAsUser": 1000, "runAsGroup": 100}, {}),
        ({"runAsUser": 1000}, {}),  # the pod's user, with the group the runtime gives it
        ({"runAsGroup": 100, "fsGroup": 100}, {"runAsUser": 4321}),
        ({"fsGroup": 100, "runAsNonRoot": True}, {"runAsUser": 4321, "runAsGroup": 4321}),
    ],
)
def test_a_pods_own_user_or_group_applies_to_the_init_container(
    pod_security: dict[str, Any], identity: dict[str, int]
) -> None:
    settings = Settings(run_as_user=4321)
    [init] = inject(pod(securityContext=pod_security), settings=settings)["spec"]["initContainers"]
    ours = {k: v for k, v in init["securityContext"].items() if k in ("runAsUser", "runAsGroup")}
    assert ours == identity


def test_no_resources_when_settings_give_none() -> None:
    out = inject(pod(), settings=Settings(prepare_resources={}))
    assert "resources" not in out["spec"]["initContainers"][0]


def test_desired_pod_does_not_modify_its_input() -> None:
    p = pod({"x": "y"})
    before = copy.deepcopy(p)
    c = cache()
    desired_pod(p, c, parse_spec(c["spec"]), SETTINGS)
    assert p == before


def test_apply_patch_unescapes_json_pointer() -> None:
    ops = [{"op": "add", "path": "/a/b~1c~0d", "value": 1}]
    assert apply_patch({"a": {}}, ops) == {"a": {"b/c~d": 1}}


def test_injected_init_containers_run_the_prepare_image_when_set() -> None:
    """The slim init image (the Dockerfile's `prepare` target) goes into pods; without the setting,
    the one full image, as before."""
    spec = {**SPEC, "scratch": {"mode": "HostPath", "hostPath": {"path": "/mnt/nvme"}}}
    slim = SETTINGS.model_copy(update={"prepare_image": "registry.example/dscache:9-prepare"})
    out = inject(pod(), cache(spec), settings=slim)
    assert [(c["name"], c["image"]) for c in out["spec"]["initContainers"]] == [
        ("dscache-scratch-setup", "registry.example/dscache:9-prepare"),
        ("dscache-prepare", "registry.example/dscache:9-prepare"),
    ]
    assert [c["image"] for c in out["spec"]["containers"]] == ["trainer", "logger"]
    full = inject(pod(), cache(spec))
    assert {c["image"] for c in full["spec"]["initContainers"]} == {SETTINGS.image}
