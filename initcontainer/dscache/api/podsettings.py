"""Identity, placement and environment of the pods the operator runs for a cache, as Kubernetes types.

`PodSettings` (a DatasetCache's `spec.install`) adapts the installer, gc and cleanup pods: the
ServiceAccount they run under (one annotated for cloud identity needs no Secret), where they are
scheduled, image pull secrets, extra environment (HTTP(S)_PROXY, NO_PROXY, a CA bundle), labels and
annotations. `ContainerSettings` (`spec.prepare`) adapts the init container injected into the user's
pods: env, envFrom and resources only (its placement is the user's pod's). The shapes are the core
API's (`v1.Toleration`, `v1.EnvVar`, `v1.EnvFromSource`, `v1.ResourceRequirements` values as
quantities: `cpu: 2` and `cpu: "2"` are the same); affinity and an EnvVar's `valueFrom` are kept as
given, for the API server to check when the pod is created.

How these combine with the operator's defaults (chart values `installer.*`, `initContainer.*`):
`dscache_operator.podsettings`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.alias_generators import to_camel

from dscache.api.envnames import ENV_NAME_PATTERN
from dscache.api.unsafeenv import refusal as env_name_refusal

# The core API's quantity (k8s.io/apimachinery resource.Quantity, as its OpenAPI schema writes it).
RESOURCE_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)"
    r"|(\.[0-9]+))))?$"
)
_RESOURCE_QUANTITY = re.compile(RESOURCE_QUANTITY_PATTERN)
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
MAX_VALUE = 65536  # an env value or annotation (no CEL rule reads them; the API server bounds them too)


def _quantity(value: Any) -> Any:
    """A number (`cpu: 2`, `cpu: 0.5`) means its text, as in every core object; text is checked."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not _RESOURCE_QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 2 or 4Gi")
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": RESOURCE_QUANTITY_PATTERN,
        }
    ),
]
Resources = dict[str, dict[str, Quantity]]
"""`{requests: {cpu: 2, memory: 4Gi}, limits: {...}}` as in a container; values kept as text."""

_OPAQUE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Toleration(_Model):
    """A core `v1.Toleration`."""

    key: str | None = Field(None, description="Taint key; empty with operator Exists: every taint.")
    operator: Literal["Exists", "Equal"] | None = Field(None, description="Exists or Equal (default).")
    value: str | None = Field(None, description="Taint value (Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect; empty: all."
    )
    toleration_seconds: int | None = Field(None, description="NoExecute: seconds the pod stays bound.")


class LocalObjectReference(_Model):
    """A core `v1.LocalObjectReference` (an image pull Secret)."""

    name: str = Field(description="Name of the object in the same namespace.", min_length=1, max_length=253)


class EnvVar(_Model):
    """A core `v1.EnvVar`: a value, or `valueFrom` (secretKeyRef, configMapKeyRef, fieldRef...)."""

    name: str = Field(description="Variable name.", min_length=1, max_length=256)
    value: str | None = Field(None, description="Value.", max_length=MAX_VALUE)
    value_from: Annotated[dict[str, Any] | None, WithJsonSchema(_OPAQUE)] = Field(
        None, description="Source of the value (a core EnvVarSource, checked when the pod is created)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid environment variable name")
        return v


class ObjectSource(_Model):
    """The ConfigMap or Secret of an envFrom entry."""

    name: str = Field(description="Its name.", min_length=1, max_length=253)
    optional: bool | None = Field(None, description="The container starts without it.")


class EnvFromSource(_Model):
    """A core `v1.EnvFromSource`: every key of a ConfigMap or Secret as a variable."""

    prefix: str | None = Field(None, description="Prefix of every variable name.")
    config_map_ref: ObjectSource | None = Field(None, description="A ConfigMap.")
    secret_ref: ObjectSource | None = Field(None, description="A Secret.")


class ContainerSettings(_Model):
    """Extra environment and resources of a container the operator adds."""

    env: list[EnvVar] | None = Field(
        None, description="More variables (a list: replaces the operator's default list)."
    )
    env_from: list[EnvFromSource] | None = Field(
        None, description="ConfigMaps and Secrets as variables (replaces the operator's default list)."
    )
    resources: Resources | None = Field(
        None,
        description="Resource requests and limits: quantities as in a container (cpu: 2, cpu: 500m, memory: "
        "4Gi; a fraction as text, cpu: '0.5'), merged into the operator's defaults per resource.",
    )


class PrepareSettings(ContainerSettings):
    """The injected init container (`dscache prepare`). Its placement is that of the user's pod.

    Its variables may not be ones that change what code it runs (LD_*, PATH, PYTHON*...: the same
    list as envNames, docs/threat-model.md): it reads the cache, whose files come from the source.
    """

    @field_validator("env")
    @classmethod
    def _safe_env(cls, v: list[EnvVar] | None) -> list[EnvVar] | None:
        for item in v or []:
            refused = env_name_refusal(item.name)
            if refused is not None:
                raise ValueError(f"{item.name}: {refused}")
        return v


class PodSettings(ContainerSettings):
    """The installer, gc and cleanup pods. Unset fields take the operator's defaults; maps (nodeSelector,
    podLabels, podAnnotations, affinity, resources) merge into them key by key, lists (tolerations,
    imagePullSecrets, env, envFrom) and single values replace them."""

    service_account_name: str | None = Field(
        None,
        description="ServiceAccount the installer runs under, e.g. one annotated for cloud identity (IRSA, "
        "GKE or Azure Workload Identity): then the source needs no secretRef. The operator binds its "
        "status-only Role to it. Anyone who may create a DatasetCache may name any ServiceAccount of the "
        "namespace, as anyone who may create a pod there.",
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
    )
    node_selector: dict[str, str] | None = Field(None, description="Node labels the pods require.")
    tolerations: list[Toleration] | None = Field(None, description="Taints the pods tolerate.")
    affinity: Annotated[dict[str, Any] | None, WithJsonSchema(_OPAQUE)] = Field(
        None, description="A core Affinity (nodeAffinity, podAffinity, podAntiAffinity)."
    )
    priority_class_name: str | None = Field(
        None, description="PriorityClass of the pods.", pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )
    image_pull_secrets: list[LocalObjectReference] | None = Field(
        None, description="Secrets for pulling the dscache image."
    )
    pod_labels: dict[str, str] | None = Field(
        None, description="More labels of the pods (the operator's own dscache.io/* labels win)."
    )
    pod_annotations: dict[str, Annotated[str, Field(max_length=MAX_VALUE)]] | None = Field(
        None, description="More annotations of the pods."
    )
