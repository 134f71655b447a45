"""Operator settings: what the deployment decides, not the DatasetCache (image, uid of Jobs, webhook...).

One typed model, `Settings`, holds every setting with its default and its check. The flags of
`dscache-operator run` and the environment variables are derived from its fields: field
`webhook.port` is the flag `--webhook-port` and the variable `DSCACHE_OPERATOR_WEBHOOK_PORT`; a field
annotated with `Flag` takes that flag's name instead (`peering_name` is `--peering`,
`DSCACHE_OPERATOR_PEERING`). A flag beats its variable, which beats the default. Values from both
arrive as text and are validated by pydantic, so a bad one is refused by `load` naming the flag or
variable it came from. Lists are repeated flags or comma-separated variables; booleans are
`--x/--no-x` or `1/0`, `true/false`; JSON values are JSON text in both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from dscache import __version__
from dscache.api.podsettings import (
    DNS_SUBDOMAIN_PATTERN,
    EnvFromSource,
    EnvVar,
    LocalObjectReference,
    Resources,
    Toleration,
)
from dscache.api.unsafeenv import refusal as env_name_refusal
from dscache_operator.hostpaths import HostPathError, admin_dir

DEFAULT_IMAGE = f"ghcr.io/dscache/dscache:{__version__}"
ENV_PREFIX = "DSCACHE_OPERATOR_"

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


@dataclass(frozen=True)
class Flag:
    """Field metadata: the setting's flag (and so variable) name when it is not the field name."""

    name: str


def _empty_is_none(value: Any) -> Any:
    """'' unsets an optional text setting (`--liveness ''`), as an absent value would."""
    return None if value == "" else value


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _json_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as err:
            raise ValueError(f"not JSON ({err})") from None
    return value


def _number_as_text(value: Any) -> Any:
    """A quantity written as a JSON number (`"cpu": 1`) means the same as its text."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _host_dir(value: str) -> str:
    try:
        return admin_dir(value)
    except HostPathError as err:
        raise ValueError(str(err)) from None


def _default_prepare_resources() -> dict[Literal["requests", "limits"], dict[str, str]]:
    return {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


OptionalText = Annotated[str | None, BeforeValidator(_empty_is_none)]
# JSON-valued settings (a flag or variable holds JSON text), in the core API's shapes; None: not set.
JsonLabels = Annotated[dict[str, str] | None, BeforeValidator(_json_text)]
JsonObject = Annotated[dict[str, Any] | None, BeforeValidator(_json_text)]
JsonResources = Annotated[Resources | None, BeforeValidator(_json_text)]
JsonTolerations = Annotated[tuple[Toleration, ...] | None, BeforeValidator(_json_text)]
JsonPullSecrets = Annotated[tuple[LocalObjectReference, ...] | None, BeforeValidator(_json_text)]
JsonEnv = Annotated[tuple[EnvVar, ...] | None, BeforeValidator(_json_text)]
JsonEnvFrom = Annotated[tuple[EnvFromSource, ...] | None, BeforeValidator(_json_text)]
Quantity = Annotated[str, BeforeValidator(_number_as_text)]
Namespace = Annotated[str, Field(pattern=DNS_LABEL)]
HostDir = Annotated[str, AfterValidator(_host_dir)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookSettings(_Model):
    """The admission webhook server: off, serving a mounted certificate, or dev mode.

    Dev mode generates a CA and registers URL webhook configurations pointing at `host:port` itself
    (named after the peering); otherwise the configurations are someone else's (the Helm chart's).
    """

    cert: OptionalText = Field(None, description="serving certificate (PEM)")
    key: OptionalText = Field(None, description="its private key (PEM)")
    dev: bool = Field(
        False, description="generate a CA and register URL webhooks to this process (test bed, local runs)"
    )
    port: int = Field(9443, ge=1, le=65535, description="port of the HTTPS webhook server")
    addr: str = Field("0.0.0.0", description="listen address (cert mode)")
    host: str = Field(
        "127.0.0.1",
        description="dev mode: the address the API server reaches this process at (listened on too)",
    )

    @model_validator(mode="after")
    def _cert_with_key(self) -> WebhookSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("--webhook-cert and --webhook-key go together")
        return self

    @property
    def enabled(self) -> bool:
        return self.dev or self.cert is not None


def _safe_prepare_env(value: tuple[EnvVar, ...] | None) -> tuple[EnvVar, ...] | None:
    """The same refusal as a DatasetCache's spec.prepare.env (variables that change what code runs)."""
    for item in value or ():
        refused = env_name_refusal(item.name)
        if refused is not None:
            raise ValueError(refused)
    return value


class InstallerDefaults(_Model):
    """Defaults of the installer, gc and cleanup pods (a DatasetCache's spec.install overrides them:
    maps merge key by key, lists and single values replace; see dscache_operator.podsettings).

    Maps and lists are JSON text in flags and variables, in the core API's shapes.
    """

    service_account_name: Annotated[
        Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN)] | None, BeforeValidator(_empty_is_none)
    ] = Field(None, description="ServiceAccount of installer pods (none: one the operator creates per cache)")
    node_selector: JsonLabels = Field(None, description="nodeSelector, as JSON")
    tolerations: JsonTolerations = Field(None, description="tolerations, as JSON")
    affinity: JsonObject = Field(None, description="affinity, as JSON")
    priority_class_name: OptionalText = Field(None, description="priorityClassName")
    image_pull_secrets: JsonPullSecrets = Field(
        None, description='imagePullSecrets, as JSON ([{"name": ...}])'
    )
    env: JsonEnv = Field(None, description="more env of their containers, as JSON")
    env_from: JsonEnvFrom = Field(None, description="envFrom of their containers, as JSON")
    pod_labels: JsonLabels = Field(None, description="more labels of the pods, as JSON")
    pod_annotations: JsonLabels = Field(None, description="annotations of the pods, as JSON")
    resources: JsonResources = Field(None, description="resources of their containers, as JSON")


class Settings(_Model):
    """Fixed for the life of the process; see the module docstring for where values come from."""

    image: str = Field(DEFAULT_IMAGE, min_length=1, description="image of installer and cleanup Jobs")
    # The Dockerfile's `prepare` target: only what `dscache prepare` needs, so a GPU node pulls a
    # fraction of the full image before its first training pod (the chart sets `<tag>-prepare`).
    prepare_image: OptionalText = Field(
        None, description="image of the init containers injected into pods (none: --image)"
    )
    image_pull_policy: PullPolicy = Field(
        "IfNotPresent", description="imagePullPolicy of installer, cleanup and init containers"
    )
    run_as_user: int = Field(
        65532,
        ge=1,
        description="uid (and gid) of installer and cleanup Jobs; of init containers in pods that set none",
    )
    # Passed to installer Jobs as DSCACHE_KUBE_API_URL when set; else they use the in-cluster service env.
    installer_api_url: OptionalText = Field(
        None,
        pattern=r"^https?://",
        description="API server URL for installer Jobs' status reports (none: their in-cluster service env)",
    )
    namespaces: Annotated[tuple[Namespace, ...], Flag("namespace"), BeforeValidator(_split_commas)] = Field(
        (), description="watch only this namespace (repeatable; comma-separated in the variable; none: all)"
    )
    peering_name: Annotated[str, Flag("peering")] = Field(
        "dscache", min_length=1, description="kopf peering name"
    )
    priority: int | None = Field(None, description="peering priority (none: start time, newest wins)")
    standalone: bool = Field(False, description="no peering (only for a throwaway local run)")
    liveness_url: Annotated[OptionalText, Flag("liveness")] = Field(
        "http://0.0.0.0:8080/healthz", description="health endpoint URL, or '' for none"
    )
    metrics_port: int = Field(9090, ge=0, le=65535, description="port of Prometheus /metrics; 0 disables")
    # The injected init container: how long it waits for the versions, and its resources. prepare
    # links and, with scratch, copies files: little CPU or memory, but copies fill the page cache.
    prepare_wait: float = Field(
        3600.0, ge=0, description="seconds the injected init container waits for unpublished versions"
    )
    prepare_resources: Annotated[
        dict[Literal["requests", "limits"], dict[str, Quantity]], BeforeValidator(_json_text)
    ] = Field(
        default_factory=_default_prepare_resources,
        description="resources of the injected init container, as JSON ('{}' for none)",
    )
    # Host directories pods may use as hostPath scratch, exactly (hostpaths.py, docs/threat-model.md).
    scratch_host_paths: Annotated[
        tuple[HostDir, ...], Flag("scratch_host_path"), BeforeValidator(_split_commas)
    ] = Field(
        (),
        description="a host directory pods may use as hostPath scratch, exactly, not paths below it "
        "(repeatable; comma-separated in the variable; none: hostPath scratch is refused)",
    )
    verbose: bool = Field(False, description="debug logging")
    webhook: WebhookSettings = Field(
        WebhookSettings(), description="admission webhook (off unless --webhook-cert or --webhook-dev)"
    )
    prepare_env: Annotated[JsonEnv, AfterValidator(_safe_prepare_env)] = Field(
        None,
        description="more env of the injected init container, as JSON (spec.prepare.env replaces it)",
    )
    prepare_env_from: JsonEnvFrom = Field(
        None, description="envFrom of the injected init container, as JSON (spec.prepare.envFrom replaces it)"
    )
    installer: InstallerDefaults = Field(
        InstallerDefaults(), description="defaults of installer, gc and cleanup pods"
    )
    # A failed install is retried after retry_base_seconds, doubling per failure up to retry_max_seconds.
    retry_base_seconds: int = Field(
        30, ge=1, description="first delay before retrying a failed install, seconds"
    )
    retry_max_seconds: int = Field(
        1800, ge=1, description="longest delay between retries of a failed install, seconds"
    )
    status_interval: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="least seconds between an installer's progress writes (its DSCACHE_STATUS_INTERVAL; "
        "none: the installer's default, 10)",
    )

    @model_validator(mode="after")
    def _retry_base_within_max(self) -> Settings:
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError(
                f"--retry-base-seconds ({self.retry_base_seconds}) is more than --retry-max-seconds "
                f"({self.retry_max_seconds}): the first delay before a retry cannot exceed the longest"
            )
        return self

    @property
    def init_image(self) -> str:
        """The image of the injected init containers: `prepare_image`, else the full `image`."""
        return self.prepare_image or self.image


class SettingsError(ValueError):
    """A bad setting. The message is one line naming the flag or variable and is safe to show."""


@dataclass(frozen=True)
class Option:
    """One setting as the outside world names it.

    `path`: the field path in Settings, e.g. ("webhook", "port"); `dest`: the argparse destination;
    `kind`: "value" (one text), "list" (repeatable flag, comma-separated variable) or "switch" (bool).
    """

    path: tuple[str, ...]
    flag: str
    env: str
    dest: str
    help: str
    kind: Literal["value", "list", "switch"]
    group: str | None
    default: Any


def _options(model: type[BaseModel], prefix: tuple[str, ...], group: str | None) -> Iterator[Option]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _options(annotation, (*prefix, name), info.description)
            continue
        own = next((m.name for m in info.metadata if isinstance(m, Flag)), name)
        dest = "_".join((*prefix, own))
        kind: Literal["value", "list", "switch"] = (
            "switch" if annotation is bool else "list" if get_origin(annotation) is tuple else "value"
        )
        default = info.get_default(call_default_factory=True)
        yield Option(
            path=(*prefix, name),
            flag="--" + dest.replace("_", "-"),
            env=ENV_PREFIX + dest.upper(),
            dest=dest,
            help=info.description or "",
            kind=kind,
            group=group,
            default=default,
        )


OPTIONS: tuple[Option, ...] = tuple(_options(Settings, (), None))


def _show_default(option: Option) -> str:
    """The default as the flag would take it (for --help)."""
    value = option.default
    if option.kind == "list":
        return ",".join(value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe(option: Option) -> str:
    """The help line of a flag: what it sets, its variable and default."""
    return f"{option.help} [{option.env}; default: {_show_default(option)}]".replace("%", "%%")


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def load(flags: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Settings from given flags (argparse dests; None or absent: not given) over DSCACHE_OPERATOR_* env.

    Raises SettingsError naming the flag or variable of the first bad value.
    """
    raw: dict[str, Any] = {}
    given: dict[tuple[str, ...], tuple[str, Any]] = {}  # path -> (flag or variable, value as given)
    for option in OPTIONS:
        if flags.get(option.dest) is not None:
            value, where = flags[option.dest], option.flag
        elif option.env in env:
            value, where = env[option.env], option.env
        else:
            continue
        _put(raw, option.path, value)
        given[option.path] = (where, value)
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        raise SettingsError(_explain(err, given)) from None


def _flag(path: tuple[str, ...]) -> str:
    return next(option.flag for option in OPTIONS if option.path == path)


def _explain(err: ValidationError, given: Mapping[tuple[str, ...], tuple[str, Any]]) -> str:
    """One line for the first error: the flag or variable, the value given, what is wrong."""
    first = err.errors(include_url=False)[0]
    loc = tuple(str(part) for part in first["loc"] if part != "[key]")
    cause = (first.get("ctx") or {}).get("error")
    message = str(cause) if isinstance(cause, Exception) else first["msg"]
    path = next((p for p in given if loc[: len(p)] == p), None)
    if path is None:  # a check across settings (cert and key): name what was set
        names = [where for p, (where, _) in given.items() if p[: len(loc)] == loc]
        if not loc:  # across top-level settings: those the message names
            names = [where for p, (where, _) in given.items() if _flag(p) in message]
        return f"{message} (set: {', '.join(names)})" if names else message
    where, value = given[path]
    inner = loc[len(path) :]
    if inner and inner[0].isdigit():  # one item of a list: name the item
        return f"{where} item {first['input']!r}: {message}"
    at = f" at {'.'.join(inner)}" if inner else ""
    return f"{where}={value!r}{at}: {message}"
