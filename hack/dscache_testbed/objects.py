"""Cluster objects every bed starts with: the host-network admission policy and the provisioner's.

Differences from a production cluster, on purpose (documented in hack/README.md):

- A MutatingAdmissionPolicy puts every pod on the host network and sets `imagePullPolicy: Never`
  on its containers. Pods may reach loopback addresses only on these machines, so there is no pod
  network; and no registry is reachable, so every image is one the bed loaded (a missing image fails
  at once with ErrImageNeverPull instead of retrying a pull). Ports get `hostPort = containerPort`,
  which the API server requires of host-network pods.
- Host networking breaks the `baseline` and `restricted` Pod Security Standards, so the policy also
  sets `runtimeClassName: testbed-host-network` (a RuntimeClass for containerd's runc handler) and
  Pod Security admission exempts that class (`pod_security_admission_config`). The policy leaves
  dry-run requests alone: a server-side dry-run of a pod still gets the full Pod Security check,
  which is how tests prove a pod template meets `restricted`.
- The default StorageClass `standard` is served by local-path-provisioner in its shared-filesystem
  mode (`sharedFileSystemPath`): one directory tree under the bed, no node affinity, so claims may
  be ReadWriteMany, as on an NFS-like class; binding is Immediate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .images import SHELL_REF

PROVISIONER_NAME = "rancher.io/local-path"
PROVISIONER_NAMESPACE = "local-path-storage"
PROVISIONER_SA = "local-path-provisioner"
PROVISIONER_CONFIGMAP = "local-path-config"
STORAGE_CLASS = "standard"
POLICY = "testbed-node-pods"
RUNTIME_CLASS = "testbed-host-network"

_PORTS = (
    "ports: c.?ports.orValue([]).map(p, {T}.ports{{"
    "containerPort: p.containerPort, protocol: p.protocol, hostPort: p.containerPort}})"
)


def _containers(field: str) -> str:
    t = f"Object.spec.{field}"
    return (
        f"{field}: object.spec.?{field}.orValue([]).map(c, {t}{{"
        f'name: c.name, imagePullPolicy: "Never", {_PORTS.format(T=t)}}})'
    )


def node_policy() -> list[dict[str, Any]]:
    expression = (
        f'Object{{spec: Object.spec{{hostNetwork: true, runtimeClassName: "{RUNTIME_CLASS}", '
        + ", ".join(_containers(f) for f in ("containers", "initContainers"))
        + "}}"
    )
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": POLICY},
            "spec": {
                "failurePolicy": "Fail",
                "reinvocationPolicy": "IfNeeded",
                "matchConditions": [{"name": "not-dry-run", "expression": "!request.dryRun"}],
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ]
                },
                "mutations": [
                    {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}}
                ],
            },
        },
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": RUNTIME_CLASS},
            "handler": "runc",
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": POLICY},
            "spec": {"policyName": POLICY},
        },
    ]


def pod_security_admission_config() -> dict[str, Any]:
    """The API server's AdmissionConfiguration: Pod Security as upstream, plus the bed's exemption."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    "defaults": {
                        "enforce": "privileged",
                        "enforce-version": "latest",
                        "audit": "privileged",
                        "audit-version": "latest",
                        "warn": "privileged",
                        "warn-version": "latest",
                    },
                    "exemptions": {"usernames": [], "namespaces": [], "runtimeClasses": [RUNTIME_CLASS]},
                },
            }
        ],
    }


def helper_pod() -> dict[str, Any]:
    """The pod the provisioner runs to create and delete volume directories (from its own manifest)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "containers": [{"name": "helper-pod", "image": SHELL_REF, "imagePullPolicy": "IfNotPresent"}],
        },
    }


def provisioner_config(pv_root: Path) -> dict[str, Any]:
    return {"sharedFileSystemPath": str(pv_root)}


def storage_objects(pv_root: Path) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount and ConfigMap (helper scripts) of the provisioner, and the class."""
    ns = PROVISIONER_NAMESPACE
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": PROVISIONER_SA, "namespace": ns}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": PROVISIONER_CONFIGMAP, "namespace": ns},
            "data": {
                "config.json": json.dumps(provisioner_config(pv_root)),
                # The upstream scripts (deploy/local-path-storage.yaml): a world-writable volume root,
                # so pods of any uid can write to a fresh claim, as on the hostPath classes it mimics.
                "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                "helperPod.yaml": json.dumps(helper_pod()),
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER_NAME,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    ]
