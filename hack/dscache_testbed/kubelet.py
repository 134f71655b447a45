"""Node agent ("local kubelet"): one Node whose pods run as local processes.

It plays three parts a real cluster splits up, each with its own identity so RBAC and the Node
authorizer stay in force: the scheduler (binds pending pods to the node, as system:kube-scheduler),
the kubelet (runs pods and reports their status, as system:node:<name>) and a hostPath volume
provisioner for the default StorageClass (as the bed's admin). Pods run with the host network:
pod IP 127.0.0.1. Container stdout+stderr go to <dir>/pods/<ns>/<pod>/<container>.log and are also
served to `kubectl logs` through the kubelet endpoint.

It also runs a userspace service proxy (proxy.py) for the loopback ClusterIPs.

Not implemented (documented in hack/README.md): liveness/startup probes, resource limits,
ephemeral containers, pod-level activeDeadlineSeconds, Service environment variables and DNS,
projected volume refresh.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import http.server
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import build
from .kube import ApiError, Kube
from .proxy import ServiceProxy

log = logging.getLogger("node-agent")
Obj = dict[str, Any]
STORAGE_CLASS = "standard"
PROVISIONER = "testbed.dscache.dev/hostpath"
DEFAULT_ENTRYPOINTS: dict[str, list[str]] = {
    # image name (registry, tag and digest stripped) -> entrypoint used when the pod gives no command
    "dscache": ["dscache"],
    "dscache-operator": ["dscache-operator"],
    "busybox": ["sh"],
    "alpine": ["sh"],
    "debian": ["sh"],
    "ubuntu": ["sh"],
    "python": ["python3"],
}
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "PYENV_ROOT", "PYENV_VERSION", "VIRTUAL_ENV", "TMPDIR")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Informer(threading.Thread):
    """List+watch one resource into a dict, waking `changed` on every event."""

    def __init__(self, kube: Kube, path: str, changed: threading.Event, **params: str):
        super().__init__(daemon=True, name=f"informer-{path}")
        self.kube, self.path, self.params, self.changed = kube, path, params, changed
        self.items: dict[str, Obj] = {}
        self.synced = threading.Event()
        self.lock = threading.Lock()

    @staticmethod
    def key(o: Obj) -> str:
        m = o["metadata"]
        return f"{m.get('namespace', '')}/{m['name']}"

    def snapshot(self) -> list[Obj]:
        with self.lock:
            return list(self.items.values())

    def run(self) -> None:
        while True:
            try:
                listed = self.kube.get(self.path, **self.params)
                with self.lock:
                    self.items = {self.key(o): o for o in listed.get("items", [])}
                self.synced.set()
                self.changed.set()
                self._watch(listed["metadata"]["resourceVersion"])
            except Exception as e:  # keep the agent alive through apiserver restarts
                log.warning("%s: %s; relisting", self.name, e)
                time.sleep(1)

    def _watch(self, rv: str) -> None:
        while True:
            for ev in self.kube.watch(
                self.path, {**self.params, "resourceVersion": rv, "timeoutSeconds": 240}
            ):
                obj = ev["object"]
                if ev["type"] == "ERROR":
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = obj["metadata"]["resourceVersion"]
                if ev["type"] == "BOOKMARK":
                    continue
                with self.lock:
                    if ev["type"] == "DELETED":
                        self.items.pop(self.key(obj), None)
                    else:
                        self.items[self.key(obj)] = obj
                self.changed.set()


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: $$ escapes, unknown references stay verbatim."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, value)


def field_ref(pod: Obj, path: str) -> str:
    m = pod["metadata"]
    simple = {
        "metadata.name": m["name"],
        "metadata.namespace": m["namespace"],
        "metadata.uid": m["uid"],
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    g = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if g:
        return str(m.get(g.group(1), {}).get(g.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        d = m.get(path.split(".")[1], {})
        return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
    raise ValueError(f"unsupported fieldRef {path}")


def image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


class Unready(Exception):
    """A pod prerequisite (volume source, secret, ...) is not there yet; retry like kubelet does."""


class ContainerRun:
    """One container of a pod: its process, restart count and reported status."""

    def __init__(self, spec: Obj, init: bool):
        self.spec, self.init = spec, init
        self.name: str = spec["name"]
        self.restarts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: Obj = {"waiting": {"reason": "PodInitializing"}}
        self.last_state: Obj = {}
        self.ready = False
        self.started_at = ""
        self.stopping = False

    def status(self, pod_uid: str) -> Obj:
        s: Obj = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": f"testbed://{self.spec.get('image', '')}",
            "restartCount": self.restarts,
            "ready": self.ready,
            "state": self.state,
            "lastState": self.last_state,
        }
        if "running" in self.state or "terminated" in self.state:
            s["containerID"] = f"testbed://{pod_uid}/{self.name}/{self.restarts}"
            s["started"] = "running" in self.state
        else:
            s["started"] = False
        return s


class PodWorker(threading.Thread):
    """Runs one pod to completion (or until deleted), reporting its status as kubelet would."""

    def __init__(self, agent: Agent, pod: Obj):
        m = pod["metadata"]
        super().__init__(daemon=True, name=f"pod-{m['namespace']}/{m['name']}")
        self.agent, self.pod = agent, pod
        self.uid: str = m["uid"]
        self.ns: str = m["namespace"]
        self.pod_name: str = m["name"]
        self.dir = agent.root / "pods" / self.ns / self.pod_name
        self.inits = [ContainerRun(c, True) for c in pod["spec"].get("initContainers", [])]
        self.mains = [ContainerRun(c, False) for c in pod["spec"]["containers"]]
        for c in self.mains:
            c.state = {"waiting": {"reason": "PodInitializing" if self.inits else "ContainerCreating"}}
        self.phase = "Pending"
        self.initialized = not self.inits
        self.sandbox_ready = False
        self.stop_event = threading.Event()
        self.grace = 30.0
        self.finished = threading.Event()
        self.lock = threading.RLock()
        self.volumes: dict[str, Path] = {}
        self.message = ""
        self.start_time = now()
        self.last_published: str = ""
        self.deleting = False

    # ---- status -----------------------------------------------------------------------------------
    def publish(self) -> None:
        with self.lock:
            ready = self.phase == "Running" and all(c.ready for c in self.mains)
            t = now()
            conds = [
                {"type": "PodReadyToStartContainers", "status": str(self.sandbox_ready)},
                {
                    "type": "Initialized",
                    "status": str(self.initialized),
                    **({} if self.initialized else {"reason": "ContainersNotInitialized"}),
                },
                {
                    "type": "ContainersReady",
                    "status": str(ready),
                    **({} if ready else {"reason": "ContainersNotReady"}),
                },
                {
                    "type": "Ready",
                    "status": str(ready),
                    **({} if ready else {"reason": "ContainersNotReady"}),
                },
                {"type": "PodScheduled", "status": "True"},
            ]
            if self.phase in ("Succeeded", "Failed"):
                for c in conds:
                    if c["type"] in ("Ready", "ContainersReady"):
                        c.update(status="False", reason="PodCompleted")
                    if c["type"] == "PodReadyToStartContainers":
                        c["status"] = "False"
            status: Obj = {
                "phase": self.phase,
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "startTime": self.start_time,
                "qosClass": self.pod.get("status", {}).get("qosClass"),
                "initContainerStatuses": [c.status(self.uid) for c in self.inits] or None,
                "containerStatuses": [c.status(self.uid) for c in self.mains],
                "message": self.message or None,
            }
            if self.sandbox_ready or self.phase != "Pending":
                status.update(podIP="127.0.0.1", podIPs=[{"ip": "127.0.0.1"}])
            key = json.dumps([status, conds], sort_keys=True)
            if key == self.last_published:
                return
            for c in conds:
                c["lastTransitionTime"] = self._transition(c, t)
            status["conditions"] = conds
            try:
                self.agent.node_api.patch(
                    f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}/status",
                    {"metadata": {"uid": self.uid}, "status": status},
                )
                self.last_published = key
            except ApiError as e:
                if e.status != 404:
                    log.warning("status of %s/%s: %s %s", self.ns, self.pod_name, e.status, e.body)
            except OSError as e:  # retried by the agent's periodic resync
                log.warning("status of %s/%s: %s", self.ns, self.pod_name, e)

    _cond_times: dict[tuple[str, str], str]

    def _transition(self, c: Obj, t: str) -> str:
        if not hasattr(self, "_cond_times"):
            self._cond_times = {}
        k = (c["type"], c["status"])
        return self._cond_times.setdefault(k, t)

    # ---- volumes ----------------------------------------------------------------------------------
    def _get(self, kind: str, name: str) -> Obj | None:
        res = {"configmap": "configmaps", "secret": "secrets", "pvc": "persistentvolumeclaims"}[kind]
        return self.agent.node_api.get_or_none(f"/api/v1/namespaces/{self.ns}/{res}/{name}")

    def _project(self, target: Path, data: dict[str, bytes], items: list[Obj] | None, mode: int) -> None:
        target.mkdir(parents=True, exist_ok=True)
        pairs = (
            [(i["key"], i["path"], i.get("mode", mode)) for i in items]
            if items
            else [(k, k, mode) for k in data]
        )
        for key, rel, m in pairs:
            if key not in data:
                raise Unready(f"key {key!r} not found")
            p = target / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data[key])
            p.chmod(m)

    def _source_data(self, kind: str, src: Obj) -> dict[str, bytes] | None:
        name = src.get("name", "")
        obj = self._get(kind, name)
        if obj is None:
            if src.get("optional"):
                return None
            raise Unready(f"{kind} {self.ns}/{name} not found")
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out

    def _sa_token(self, src: Obj) -> bytes:
        sa = self.pod["spec"].get("serviceAccountName", "default")
        body = {
            "spec": {
                "audiences": [src["audience"]] if src.get("audience") else None,
                "expirationSeconds": src.get("expirationSeconds", 3607),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "uid": self.uid},
            }
        }
        try:
            out = self.agent.node_api.post(f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token", body)
        except ApiError as e:
            raise Unready(f"serviceaccount token for {sa}: {e}") from e
        return str(out["status"]["token"]).encode()

    def _downward(self, items: list[Obj]) -> dict[str, bytes]:
        out = {}
        for it in items:
            if "fieldRef" in it:
                out[it["path"]] = field_ref(self.pod, it["fieldRef"]["fieldPath"]).encode()
            else:
                out[it["path"]] = b"1"  # resourceFieldRef: limits are not enforced here
        return out

    def prepare_volumes(self) -> None:
        root = self.agent.root
        vol_dir = self.dir / "volumes"
        for v in self.pod["spec"].get("volumes", []):
            name = v["name"]
            target = vol_dir / name
            if "emptyDir" in v:
                target.mkdir(parents=True, exist_ok=True)
            elif "hostPath" in v:
                hp = v["hostPath"]
                target = root / "hostpath" / hp["path"].lstrip("/")
                if hp.get("type") in ("File", "FileOrCreate"):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.touch()
                else:
                    target.mkdir(parents=True, exist_ok=True)
            elif "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                pvc = self._get("pvc", claim)
                if pvc is None:
                    raise Unready(f'persistentvolumeclaim "{claim}" not found')
                if pvc.get("status", {}).get("phase") != "Bound":
                    raise Unready(f'persistentvolumeclaim "{claim}" is not bound')
                target = self.agent.pv_dir(pvc["spec"]["volumeName"])
                target.mkdir(parents=True, exist_ok=True)
            elif "configMap" in v or "secret" in v:
                kind = "configmap" if "configMap" in v else "secret"
                src = v.get("configMap") or dict(v["secret"], name=v["secret"].get("secretName"))
                data = self._source_data(kind, src)
                self._project(target, data or {}, src.get("items"), src.get("defaultMode", 0o644))
            elif "downwardAPI" in v:
                self._project(
                    target,
                    self._downward(v["downwardAPI"]["items"]),
                    None,
                    v["downwardAPI"].get("defaultMode", 0o644),
                )
            elif "projected" in v:
                mode = v["projected"].get("defaultMode", 0o644)
                target.mkdir(parents=True, exist_ok=True)
                for s in v["projected"].get("sources", []):
                    if "serviceAccountToken" in s:
                        st = s["serviceAccountToken"]
                        self._project(
                            target, {"t": self._sa_token(st)}, [{"key": "t", "path": st["path"]}], mode
                        )
                    elif "configMap" in s or "secret" in s:
                        kind = "configmap" if "configMap" in s else "secret"
                        src = s.get("configMap") or s["secret"]
                        data = self._source_data(kind, src)
                        if data is not None:
                            self._project(target, data, src.get("items"), mode)
                    elif "downwardAPI" in s:
                        self._project(target, self._downward(s["downwardAPI"]["items"]), None, mode)
            else:
                raise Unready(f"volume {name}: unsupported volume type {sorted(set(v) - {'name'})}")
            self.volumes[name] = target

    # ---- environment ------------------------------------------------------------------------------
    def build_env(self, spec: Obj) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update(
            HOSTNAME=self.pod_name,
            KUBERNETES_SERVICE_HOST="127.0.0.1",
            KUBERNETES_SERVICE_PORT=str(self.agent.apiserver_port),
            KUBERNETES_SERVICE_PORT_HTTPS=str(self.agent.apiserver_port),
            KUBERNETES_PORT=f"tcp://127.0.0.1:{self.agent.apiserver_port}",
        )
        for ef in spec.get("envFrom", []):
            kind = "configmap" if "configMapRef" in ef else "secret"
            src = ef.get("configMapRef") or ef["secretRef"]
            data = self._source_data(kind, src) or {}
            for k, val in data.items():
                env[ef.get("prefix", "") + k] = val.decode()
        for e in spec.get("env", []):
            if "value" in e or "valueFrom" not in e:
                env[e["name"]] = expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[e["name"]] = field_ref(self.pod, vf["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind = "configmap" if "configMapKeyRef" in vf else "secret"
                ref = vf.get("configMapKeyRef") or vf["secretKeyRef"]
                ref_data = self._source_data(kind, ref)
                if ref_data is None:
                    continue
                if ref["key"] not in ref_data:
                    if ref.get("optional"):
                        continue
                    raise Unready(f"key {ref['key']!r} not found in {kind} {ref['name']}")
                env[e["name"]] = ref_data[ref["key"]].decode()
            elif "resourceFieldRef" in vf:
                res = vf["resourceFieldRef"]["resource"]
                kind, _, rname = res.partition(".")
                val = spec.get("resources", {}).get(kind, {}).get(rname)
                env[e["name"]] = str(val or ("1" if rname == "cpu" else "0"))
        return env

    def argv(self, spec: Obj, env: dict[str, str]) -> list[str]:
        cmd = spec.get("command")
        args = spec.get("args")
        if not cmd:
            entry = self.agent.entrypoints.get(image_name(spec.get("image", "")))
            if entry is None:
                raise ValueError(
                    f"image {spec.get('image')!r} has no entrypoint mapped; give `command` or add it to "
                    "DSCACHE_TESTBED_IMAGES"
                )
            cmd = entry
        out = [expand(a, env) for a in [*cmd, *(args or [])]]
        if not out:
            raise ValueError("empty command")
        return out

    # ---- running ----------------------------------------------------------------------------------
    def start_container(self, c: ContainerRun) -> None:
        spec = c.spec
        log_path = self.dir / f"{c.name}.log"
        term = self.dir / f"{c.name}.{c.restarts}.termination-log"
        term.write_bytes(b"")
        c.state = {"waiting": {"reason": "ContainerCreating"}}
        try:
            env = self.build_env(spec)
            argv = self.argv(spec, env)
        except (ValueError, Unready) as e:
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}}
            raise
        mounts = [{"source": str(term), "target": spec.get("terminationMessagePath", "/dev/termination-log")}]
        for vm in spec.get("volumeMounts", []):
            src = self.volumes[vm["name"]]
            if vm.get("subPath"):
                src = src / expand(vm["subPath"], env)
                if not src.exists():
                    src.mkdir(parents=True)
            mounts.append(
                {"source": str(src), "target": vm["mountPath"], "readOnly": vm.get("readOnly", False)}
            )
        workdir = spec.get("workingDir") or str(self.dir / "work" / c.name)
        spec_file = self.dir / f"{c.name}.{c.restarts}.spec.json"
        spec_file.write_text(
            json.dumps(
                {
                    "argv": argv,
                    "env": env,
                    "workingDir": workdir,
                    "mounts": mounts,
                    "createdLog": str(self.agent.root / "created-mountpoints"),
                }
            )
        )
        pyenv = dict(os.environ)
        pyenv["PYTHONPATH"] = str(build.HACK)
        with open(log_path, "ab") as out:
            c.proc = subprocess.Popen(
                [sys.executable, "-m", "dscache_testbed.container", str(spec_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=pyenv,
            )
        (self.dir / f"{c.name}.pid").write_text(str(c.proc.pid))
        c.started_at = now()
        c.state = {"running": {"startedAt": c.started_at}}
        c.ready = "readinessProbe" not in spec
        if not c.ready:
            threading.Thread(target=self.probe_loop, args=(c, c.proc), daemon=True).start()

    def wait_container(self, c: ContainerRun) -> int:
        assert c.proc is not None
        code = c.proc.wait()
        code = 128 - code if code < 0 else code  # killed by signal N -> 128+N
        c.ready = False
        spec = c.spec
        term = self.dir / f"{c.name}.{c.restarts}.termination-log"
        msg = term.read_bytes()[:4096].decode(errors="replace") if term.exists() else ""
        if not msg and code != 0 and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            lines = (self.dir / f"{c.name}.log").read_bytes().decode(errors="replace").splitlines()[-80:]
            msg = "\n".join(lines)[-2048:]
        reason = "Completed" if code == 0 else "Error"
        if code in (126, 127, 128) and not msg:
            lines = (self.dir / f"{c.name}.log").read_bytes().decode(errors="replace").splitlines()
            if lines and lines[-1].startswith("testbed:"):
                reason, msg = "StartError", lines[-1]
        term_state: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": c.started_at,
            "finishedAt": now(),
            "containerID": f"testbed://{self.uid}/{c.name}/{c.restarts}",
        }
        if msg:
            term_state["message"] = msg
        c.state = {"terminated": term_state}
        return code

    def probe_loop(self, c: ContainerRun, proc: subprocess.Popen[bytes]) -> None:
        p = c.spec["readinessProbe"]
        time.sleep(p.get("initialDelaySeconds", 0))
        ok = fail = 0
        while proc.poll() is None and not self.stop_event.is_set():
            good = self.probe(c, p)
            ok, fail = (ok + 1, 0) if good else (0, fail + 1)
            if good and ok >= p.get("successThreshold", 1) and not c.ready:
                c.ready = True
                self.publish()
            elif not good and fail >= p.get("failureThreshold", 3) and c.ready:
                c.ready = False
                self.publish()
            self.stop_event.wait(p.get("periodSeconds", 10))

    def _port(self, c: ContainerRun, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for cp in c.spec.get("ports", []):
            if cp.get("name") == port:
                return int(cp["containerPort"])
        raise ValueError(f"named port {port} not found")

    def probe(self, c: ContainerRun, p: Obj) -> bool:
        timeout = p.get("timeoutSeconds", 1)
        try:
            if "httpGet" in p:
                h = p["httpGet"]
                scheme = h.get("scheme", "HTTP").lower()
                url = f"{scheme}://127.0.0.1:{self._port(c, h['port'])}{h.get('path', '/')}"
                ctx = ssl._create_unverified_context() if scheme == "https" else None
                req = urllib.request.Request(
                    url, headers={x["name"]: x["value"] for x in h.get("httpHeaders", [])}
                )
                with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                    return 200 <= int(r.status) < 400
            if "tcpSocket" in p or "grpc" in p:
                port = self._port(c, (p.get("tcpSocket") or p["grpc"])["port"])
                with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                    return True
            if "exec" in p:
                return (
                    subprocess.run(
                        p["exec"]["command"], timeout=timeout + 5, check=False, capture_output=True
                    ).returncode
                    == 0
                )
        except (OSError, ValueError, urllib.error.URLError, subprocess.TimeoutExpired):
            return False
        return True

    def run_to_exit(self, c: ContainerRun, policy: str) -> int:
        """Start a container, restarting it per restartPolicy; returns its final exit code."""
        backoff = 1.0
        while True:
            self.start_container(c)
            self.publish()
            code = self.wait_container(c)
            self.publish()
            if self.stop_event.is_set():
                return code
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return code
            c.last_state = c.state
            c.state = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {backoff:.0f}s"}}
            self.publish()
            if self.stop_event.wait(backoff):
                c.state = c.last_state
                return code
            backoff = min(backoff * 2, 10.0)
            c.restarts += 1

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s", self.ns, self.pod_name)
        finally:
            self.finished.set()
            self.agent.changed.set()

    def _run(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        policy = self.pod["spec"].get("restartPolicy", "Always")
        self.publish()
        while not self.stop_event.is_set():
            try:
                self.prepare_volumes()
                break
            except (Unready, ApiError) as e:
                self.message = ""
                for c in self.mains:
                    c.state = {"waiting": {"reason": "ContainerCreating", "message": str(e)[:500]}}
                self.publish()
                self.stop_event.wait(1.0)
        if self.stop_event.is_set():
            return
        self.sandbox_ready = True
        self.publish()
        sidecars: list[threading.Thread] = []
        for c in self.inits:
            if c.spec.get("restartPolicy") == "Always":  # native sidecar: start it and go on
                t = threading.Thread(target=self._guard, args=(c, "Always"), daemon=True)
                t.start()
                sidecars.append(t)
                continue
            code = self._guard(c, "Never" if policy == "Never" else "OnFailure")
            if self.stop_event.is_set():
                return
            if code != 0:
                self.phase = "Failed"
                self.publish()
                return
        self.initialized = True
        self.phase = "Running"
        self.publish()
        codes: dict[str, int] = {}
        threads = []
        for c in self.mains:
            t = threading.Thread(
                target=lambda c=c: codes.__setitem__(c.name, self._guard(c, policy)), daemon=True
            )
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        if self.stop_event.is_set():
            return
        self.stop_event.set()  # ends sidecars
        for c in self.inits:
            if c.spec.get("restartPolicy") == "Always":
                self._kill(c, 0)
        self.phase = "Succeeded" if all(v == 0 for v in codes.values()) else "Failed"
        self.publish()

    def _guard(self, c: ContainerRun, policy: str) -> int:
        """run_to_exit, turning configuration errors into a waiting state retried like kubelet."""
        while not self.stop_event.is_set():
            try:
                return self.run_to_exit(c, policy)
            except (ValueError, Unready, ApiError):
                self.publish()
                self.stop_event.wait(2.0)
        return 137

    def _kill(self, c: ContainerRun, grace: float) -> None:
        proc = c.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, grace: float) -> None:
        """Pod deleted: SIGTERM every container, SIGKILL after the grace period."""
        self.stop_event.set()
        for c in self.inits + self.mains:
            c.stopping = True
        threads = [threading.Thread(target=self._kill, args=(c, grace)) for c in self.inits + self.mains]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


class KubeletServer(http.server.ThreadingHTTPServer):
    """The kubelet endpoint the API server proxies `kubectl logs` to (client certs from the bed CA)."""

    agent: Agent


class KubeletHandler(http.server.BaseHTTPRequestHandler):
    server: KubeletServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts == ["healthz"]:
            self._send(200, b"ok")
            return
        if len(parts) == 4 and parts[0] == "containerLogs":
            _, ns, pod, container = parts
            f = self.server.agent.root / "pods" / ns / pod / f"{container}.log"
            if not f.exists():
                self._send(404, b"container log not found")
                return
            data = f.read_bytes()
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            if "tailLines" in params:
                data = b"".join(data.splitlines(keepends=True)[-int(params["tailLines"]) :])
            if "limitBytes" in params:
                data = data[: int(params["limitBytes"])]
            self._send(200, data)
            return
        self._send(404, b"not found")

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Agent:
    """The node: registration and heartbeats, scheduling, pod workers, volume provisioning."""

    def __init__(self, root: Path, node: str, port: int):
        self.root, self.node, self.port = root, node, port
        state = json.loads((root / "state.json").read_text())
        self.apiserver_port = int(state["ports"]["apiserver"])
        port = self.apiserver_port
        self.node_api = Kube(root, "node", port)
        self.sched_api = Kube(root, "scheduler", port)
        self.admin_api = Kube(root, "admin", port)
        self.entrypoints = dict(DEFAULT_ENTRYPOINTS)
        self.entrypoints.update(json.loads(os.environ.get("DSCACHE_TESTBED_IMAGES", "{}")))
        self.changed = threading.Event()
        self.workers: dict[str, PodWorker] = {}
        self.stopping = threading.Event()
        self.proxy = ServiceProxy()

    def pv_dir(self, pv_name: str) -> Path:
        """Where a PersistentVolume's data lives: its hostPath mapped under the bed, else pv/<name>."""
        try:
            pv = self.node_api.get(f"/api/v1/persistentvolumes/{pv_name}")
        except ApiError:
            return self.root / "pv" / pv_name
        hp: str | None = pv.get("spec", {}).get("hostPath", {}).get("path")
        if hp and hp.startswith(str(self.root) + "/"):
            return Path(hp)
        if hp:
            return self.root / "hostpath" / hp.lstrip("/")
        return self.root / "pv" / pv_name

    # ---- node -------------------------------------------------------------------------------------
    def node_status(self) -> Obj:
        t = now()
        mem_kb = 0
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{mem_kb}Ki",
            "pods": "110",
            "ephemeral-storage": f"{shutil.disk_usage(self.root).total // 1024}Ki",
        }
        conds = [
            {
                "type": t_,
                "status": "False",
                "reason": f"KubeletHas{r}",
                "lastHeartbeatTime": t,
                "lastTransitionTime": self.started,
            }
            for t_, r in (
                ("MemoryPressure", "SufficientMemory"),
                ("DiskPressure", "NoDiskPressure"),
                ("PIDPressure", "SufficientPID"),
            )
        ]
        conds.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "testbed node agent is posting ready status",
                "lastHeartbeatTime": t,
                "lastTransitionTime": self.started,
            }
        )
        uname = platform.uname()
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conds,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": "testbed",
                "systemUUID": "testbed",
                "bootID": str(os.getpid()),
                "kernelVersion": uname.release,
                "osImage": "dscache testbed",
                "operatingSystem": "linux",
                "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(uname.machine, uname.machine),
                "containerRuntimeVersion": "testbed://0.1",
                "kubeletVersion": build.K8S_RELEASE,
                "kubeProxyVersion": "",
            },
        }

    def register(self) -> None:
        self.started = now()
        body = {
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "testbed",
                },
            }
        }
        try:
            self.node_api.post("/api/v1/nodes", body)
        except ApiError as e:
            if e.status != 409:
                raise
        self.node_api.patch(f"/api/v1/nodes/{self.node}/status", {"status": self.node_status()})

    def heartbeat(self) -> None:
        lease_ns = "kube-node-lease"
        n = 0
        while not self.stopping.is_set():
            try:
                spec = {
                    "holderIdentity": self.node,
                    "leaseDurationSeconds": 40,
                    "renewTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                }
                leases = f"/apis/coordination.k8s.io/v1/namespaces/{lease_ns}/leases"
                try:
                    self.node_api.patch(f"{leases}/{self.node}", {"spec": spec})
                except ApiError as e:
                    if e.status != 404:
                        raise
                    self.node_api.post(leases, {"metadata": {"name": self.node}, "spec": spec})
                if n % 3 == 0:
                    self.node_api.patch(f"/api/v1/nodes/{self.node}/status", {"status": self.node_status()})
            except Exception as e:
                log.warning("heartbeat: %s", e)
            n += 1
            self.stopping.wait(10)

    # ---- scheduler --------------------------------------------------------------------------------
    def schedule(self, pending: Informer) -> None:
        """Bind every unscheduled pod to this node once its PVCs are bound (as kube-scheduler would)."""
        for pod in pending.snapshot():
            m, spec = pod["metadata"], pod["spec"]
            if m.get("deletionTimestamp") or spec.get("nodeName"):
                continue
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            unbound = []
            for v in spec.get("volumes", []):
                claim = v.get("persistentVolumeClaim", {}).get("claimName")
                if claim:
                    try:
                        pvc = self.sched_api.get(
                            f"/api/v1/namespaces/{m['namespace']}/persistentvolumeclaims/{claim}"
                        )
                        if pvc.get("status", {}).get("phase") != "Bound":
                            unbound.append(claim)
                    except ApiError:
                        unbound.append(claim)
            if unbound:
                continue
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": m["name"], "uid": m["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
            }
            try:
                self.sched_api.post(f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/binding", body)
            except ApiError as e:
                if e.status not in (404, 409):
                    log.warning("bind %s/%s: %s %s", m["namespace"], m["name"], e.status, e.body)

    # ---- provisioner ------------------------------------------------------------------------------
    def ensure_storage_class(self) -> None:
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
        try:
            self.admin_api.post("/apis/storage.k8s.io/v1/storageclasses", body)
        except ApiError as e:
            if e.status != 409:
                raise

    def provision(self, pvcs: Informer, pvs: Informer) -> None:
        """A hostPath provisioner: a directory per claim, a PV pre-bound to it; the PV controller binds."""
        for pvc in pvcs.snapshot():
            m, spec = pvc["metadata"], pvc["spec"]
            ann = m.get("annotations", {})
            if spec.get("volumeName") or m.get("deletionTimestamp"):
                continue
            if ann.get("volume.kubernetes.io/storage-provisioner") != PROVISIONER:
                continue
            name = f"pvc-{m['uid']}"
            path = self.root / "pv" / name
            path.mkdir(parents=True, exist_ok=True)
            body = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                "spec": {
                    "capacity": {
                        "storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
                    },
                    "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": spec.get("storageClassName", STORAGE_CLASS),
                    "volumeMode": spec.get("volumeMode", "Filesystem"),
                    "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": m["namespace"],
                        "name": m["name"],
                        "uid": m["uid"],
                    },
                },
            }
            try:
                self.admin_api.post("/api/v1/persistentvolumes", body)
            except ApiError as e:
                if e.status != 409:
                    log.warning("provision %s: %s %s", name, e.status, e.body)
        for pv in pvs.snapshot():
            m = pv["metadata"]
            if (
                m.get("annotations", {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER
                and pv.get("status", {}).get("phase") == "Released"
                and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                shutil.rmtree(self.root / "pv" / m["name"], ignore_errors=True)
                with contextlib.suppress(ApiError):
                    self.admin_api.delete(f"/api/v1/persistentvolumes/{m['name']}")

    # ---- pods -------------------------------------------------------------------------------------
    def sync_pods(self, mine: Informer) -> None:
        seen = set()
        for pod in mine.snapshot():
            m = pod["metadata"]
            uid = m["uid"]
            seen.add(uid)
            w = self.workers.get(uid)
            phase = pod.get("status", {}).get("phase")
            if w is None:
                if phase in ("Succeeded", "Failed") and not m.get("deletionTimestamp"):
                    continue  # finished before this agent started
                w = PodWorker(self, pod)
                self.workers[uid] = w
                if not m.get("deletionTimestamp"):
                    w.start()
                else:
                    w.finished.set()
            if m.get("deletionTimestamp") and not w.deleting:
                w.deleting = True
                grace = float(m.get("deletionGracePeriodSeconds") or 0)
                threading.Thread(target=self._finish_delete, args=(w, grace), daemon=True).start()
        for w in self.workers.values():
            if w.ident is not None:  # its thread ran: it owns the pod's status
                w.publish()  # no-op unless a change was not delivered yet
        for uid in list(self.workers):
            if uid not in seen:
                w = self.workers.pop(uid)
                threading.Thread(target=w.stop, args=(0,), daemon=True).start()

    def _finish_delete(self, w: PodWorker, grace: float) -> None:
        w.stop(grace)
        w.finished.wait(grace + 10)
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": w.uid}}
        try:
            self.node_api.delete(f"/api/v1/namespaces/{w.ns}/pods/{w.pod_name}", body)
        except ApiError as e:
            if e.status not in (404, 409):
                log.warning("delete %s/%s: %s %s", w.ns, w.pod_name, e.status, e.body)
        shutil.rmtree(w.dir / "volumes", ignore_errors=True)

    def serve(self) -> None:
        srv = KubeletServer(("127.0.0.1", self.port), KubeletHandler)
        srv.agent = self
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.root / "pki" / "ca.crt"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(str(self.root / "pki" / "kubelet.crt"), str(self.root / "pki" / "kubelet.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.serve_forever()

    def run(self) -> None:
        self.register()
        threading.Thread(target=self.heartbeat, daemon=True, name="heartbeat").start()
        threading.Thread(target=self.serve, daemon=True, name="kubelet-server").start()
        while True:
            try:
                self.ensure_storage_class()
                break
            except ApiError as e:
                log.warning("storage class: %s", e.status)
                time.sleep(1)
        sel = f"spec.nodeName={self.node}"
        mine = Informer(self.node_api, "/api/v1/pods", self.changed, fieldSelector=sel)
        pending = Informer(self.sched_api, "/api/v1/pods", self.changed, fieldSelector="spec.nodeName=")
        pvcs = Informer(self.admin_api, "/api/v1/persistentvolumeclaims", self.changed)
        pvs = Informer(self.admin_api, "/api/v1/persistentvolumes", self.changed)
        services = Informer(self.admin_api, "/api/v1/services", self.changed)
        for inf in (mine, pending, pvcs, pvs, services):
            inf.start()
        while not self.stopping.is_set():
            self.changed.wait(2.0)
            self.changed.clear()
            steps: list[Callable[[], None]] = [
                lambda: self.provision(pvcs, pvs),
                lambda: self.schedule(pending),
                lambda: self.sync_pods(mine),
                lambda: self.proxy.sync(services.snapshot(), mine.snapshot()),
            ]
            for step in steps:
                try:
                    step()
                except Exception:
                    log.exception("reconcile")

    def shutdown(self) -> None:
        """Stop every pod's processes so nothing outlives the bed."""
        self.stopping.set()
        self.proxy.close()
        threads = [threading.Thread(target=w.stop, args=(2.0,)) for w in self.workers.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--node-name", default="testbed-node")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    agent = Agent(args.dir.resolve(), args.node_name, args.port)

    def on_term(signum: int, frame: object) -> None:
        agent.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    agent.run()


if __name__ == "__main__":
    main()
