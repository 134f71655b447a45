"""The operator under load on the test bed (issue 17): admission cost and reconcile throughput.

    hack/testbed up --dir /tmp/bed      # once; then
    python bench/bench_load.py --bed /tmp/bed [--caches 500] [--pods 200] [--concurrency 20]

One run, against the operator of this checkout (or `--src DIR`, another checkout) started as a process
with its dev-mode webhooks (`--webhook-dev`), in a fresh namespace:

1. M DatasetCaches (`--caches`, 500) created at once (`--concurrency` clients). All name one claim,
   a PVC of a storage class that does not exist: it never binds, so the first cache's installer pod
   is never scheduled and the others queue behind that Job (phase Queued), which is what a busy
   shared volume looks like to the operator, without running 500 installers on a shared machine.
   Printed: time until every one has a current status (observedGeneration == generation), refused
   creates, the validating webhook's latency, the operator's CPU seconds and peak RSS. Meanwhile,
   admission while the operator is busy: for `--busy-seconds` (20) from the first create, one pod at a
   time, labelled and unlabelled in turn, as server-side dry runs (nothing stored), every 50 ms; a
   fixed window, so that an operator done sooner is not measured over a denser one.
2. With the M caches present (and the queued ones polled by the operator): bursts of N pods
   (`--pods`, 200, `--concurrency` at a time), unlabelled and labelled (each labelled pod names one of
   the caches), `--rounds` times in alternating order. A burst's time runs from its first POST to
   the last response: pods are created with a scheduler that does not exist, so no node is involved
   and the time is the API server's, admission included (the honest measure of admission cost with
   a fake node, and the same with a real kubelet). Printed: labelled / unlabelled burst time, the
   client's p50/p99 per pod, refused pods, and the API server's own histogram
   `apiserver_admission_webhook_admission_duration_seconds` for dscache's webhooks (percentiles
   interpolated within its buckets, as Prometheus' histogram_quantile does: 5, 25, 100, 500 ms...).

With `--floors`, the bursts again with the pod webhook changed: dscache's at the other
reinvocationPolicy (IfNeeded: the API server calls it a second time once other plugins touch the pod
it patched; the bed's own admission policy touches every pod); a replay of dscache's answers (a
trivial server in another process that returns, for every pod, the patch and warnings dscache gave
the first such pod, and for a reinvocation what dscache answered to one), at IfNeeded and Never: the
patch's cost in the API server without dscache's server; and an allow-all webhook that patches nothing
(the cost of any webhook on this API server) or adds one label (the cost of any patch: the API server
decodes the pod again and runs the plugins after the webhooks again, here the bed's admission
policy). Each line: the ratio, the bursts' seconds and the API server's p50 / p99 for the webhook.

The bed's own MutatingAdmissionPolicy (hack/dscache_testbed/objects.py: host network for every pod,
since the bed has no pod network) runs on every pod a burst creates, and again after a webhook's patch
(its reinvocationPolicy is IfNeeded); a platform team's cluster does not run it. `--bed-policy both`
(the default) measures every burst line with it and without it (the binding gets a namespaceSelector
that excludes the bench's namespace, put back afterwards), the two alternating by round; `with` or
`without` measures one. The floors also replay parts of dscache's patch alone (VARIANTS: the
annotation, the workload env, the volumes, the volumes and workload mounts, the init container without
its mounts, the volumes and the init container), to find which part the API server pays for;
`--floor REGEX` picks floors by label. Two more floors: dscache's webhook against unlabelled pods that
carry dscache's items by hand (the labelled pod as admitted, minus its label: the admission's cost
without the bigger pod's), and one MutatingAdmissionPolicy that adds those items to every labelled
pod in the API server itself, no webhook call (the floor of any design without a call: no lookup, no
parameters, one policy).

`--admission process` runs the admission server in a process of its own (`admission_alone.py`) next
to the operator without webhooks, against the operator's own admission thread (`thread`, the default):
does admission still compete with kopf for the interpreter?

Each burst line also gives the ratio of each round (its two bursts are adjacent) and their median:
on a shared machine a burst's time moves with the other processes, and the median of adjacent pairs
is steadier than the pooled sums.

The targets of issue 17 are printed next to the numbers; they are not asserted (nothing here is a test).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.client import HTTPSConnection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "hack"), str(REPO / "operator"), str(REPO / "initcontainer")]

import yaml  # noqa: E402
from dscache_testbed import bed, build, objects  # noqa: E402
from dscache_testbed.kube import ApiError, Kube  # noqa: E402
from dscache_testbed.polling import wait  # noqa: E402

from dscache_operator import devcerts  # noqa: E402

DSC = "/apis/dscache.io/v1alpha1"
HOOKS = "/apis/admissionregistration.k8s.io/v1"
IMAGE = "ghcr.io/example/dscache:bench"
CLAIM = "bench-claim"
NO_CLASS = "dscache-bench-never-binds"
NO_SCHEDULER = "dscache-bench-unscheduled"
METRIC = "apiserver_admission_webhook_admission_duration_seconds"
OPERATOR_METRIC = "dscache_admission_seconds"  # the operator's own time per review (after issue 17)
BUSY = 20.0  # seconds of admission probes from the creation of the caches
BINDING = f"{HOOKS}/mutatingadmissionpolicybindings/{objects.POLICY}"
# --bed-policy: the states of the bed's admission policy the bursts are measured in.
POLICY_STATES = {"with": ("with",), "without": ("without",), "both": ("with", "without")}
TARGETS = {"ratio": 1.2, "p50": 0.1, "p99": 0.5, "current_s": 30.0, "rss_mb": 300.0}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    """Keep-alive HTTPS to the API server, one connection per thread (a burst's clients)."""

    def __init__(self, kube: Kube) -> None:
        self.kube, self.local = kube, threading.local()

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        """(HTTP status, message of a refusal); one retry on a connection the server closed."""
        data = json.dumps(body).encode()
        for attempt in (1, 2):
            conn: HTTPSConnection | None = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = HTTPSConnection("127.0.0.1", self.kube.port, context=self.kube.ctx)
            try:
                conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, ConnectionError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                continue
            if 200 <= resp.status < 300:
                return resp.status, ""
            with suppress(ValueError):
                return resp.status, str(json.loads(raw).get("message", ""))
            return resp.status, raw.decode(errors="replace")[:200]
        raise AssertionError("unreachable")

    def get_text(self, path: str) -> str:
        conn = HTTPSConnection("127.0.0.1", self.kube.port, context=self.kube.ctx)
        try:
            conn.request("GET", path, headers={"Accept": "text/plain"})
            return conn.getresponse().read().decode()
        finally:
            conn.close()


@dataclass
class Histogram:
    """Cumulative bucket counts of one histogram (upper bound in seconds -> count)."""

    buckets: dict[float, float] = field(default_factory=dict)

    def minus(self, before: Histogram) -> Histogram:
        return Histogram({le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()})

    def plus(self, other: Histogram) -> Histogram:
        keys = self.buckets.keys() | other.buckets.keys()
        return Histogram({le: self.buckets.get(le, 0.0) + other.buckets.get(le, 0.0) for le in keys})

    @property
    def count(self) -> int:
        return int(self.buckets.get(float("inf"), 0.0))

    def quantile(self, q: float) -> float:
        """Prometheus' histogram_quantile: linear within the bucket; the last finite bound past it."""
        total = self.count
        if not total:
            return float("nan")
        rank, lower, below = q * total, 0.0, 0.0
        for le in sorted(self.buckets):
            n = self.buckets[le]
            if n >= rank:
                if le == float("inf"):
                    return lower
                return lower + (le - lower) * (rank - below) / max(n - below, 1e-9)
            lower, below = le, n
        return lower


def parse_histograms(metrics: str, metric: str, label: str, suffix: str = "") -> dict[str, Histogram]:
    """Histogram `metric` per value of `label` (ending in `suffix`, removed), buckets summed over the
    other labels: per dscache webhook (`mutate-pods`, `validate-datasetcaches`)."""
    line_re = re.compile(rf"^{metric}_bucket\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)$")
    out: dict[str, Histogram] = {}
    for line in metrics.splitlines():
        match = line_re.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        name = labels.get(label, "")
        if not name.endswith(suffix):
            continue
        hist = out.setdefault(name.removesuffix(suffix), Histogram())
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        hist.buckets[le] = hist.buckets.get(le, 0.0) + float(match["value"])
    return out


# One label: the smallest change to a pod (bench pods have labels); the API server then re-decodes
# the pod and runs the plugins that come after the webhooks again, as for any patch.
ONE_LABEL = [{"op": "add", "path": "/metadata/labels/dscache-bench-floor", "value": "x"}]


def _serve_https(handler: Callable[[Any], Awaitable[Any]], port: int, cert: str, key: str) -> None:
    """Serve `handler` for POST /<any webhook path> over HTTPS on 127.0.0.1:port, forever."""
    from aiohttp import web

    async def serve() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_post("/{hook}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        await asyncio.Event().wait()

    asyncio.run(serve())


def allow_all(port: int, cert: str, key: str, patch: str = "") -> None:
    """An admission webhook that allows everything on 127.0.0.1:port, with `patch` (JSON) if given."""
    from aiohttp import web

    extra = {"patchType": "JSONPatch", "patch": base64.b64encode(patch.encode()).decode()} if patch else {}

    async def allow(request: web.Request) -> web.Response:
        review = await request.json()
        response = {"uid": review["request"]["uid"], "allowed": True, **extra}
        return web.json_response(
            {"apiVersion": review["apiVersion"], "kind": review["kind"], "response": response}
        )

    _serve_https(allow, port, cert, key)


# Parts of dscache's patch, replayed alone to find which part the API server pays for: the ops whose
# path matches, and whether the init container goes without its volume mounts (they name volumes that
# a part without the volumes lacks; the pod would be invalid).
VARIANTS: dict[str, tuple[str, bool]] = {
    "the annotation only": (r"^/metadata/annotations", False),
    "the workload env only": (r"^/spec/containers/\d+/env$", False),
    "the volumes only": (r"^/spec/volumes$", False),
    "the volumes and workload mounts": (r"^/spec/(volumes|containers/\d+/volumeMounts)$", False),
    "the init container only, without its mounts": (r"^/spec/initContainers$", True),
    "the volumes and the init container": (r"^/spec/(volumes|initContainers)$", False),
}


def patch_variant(response: dict[str, Any], variant: str) -> dict[str, Any]:
    """`response` (an AdmissionResponse with a base64 JSON patch) with only the ops of `variant`."""
    keep, no_mounts = VARIANTS[variant]
    ops = [op for op in json.loads(base64.b64decode(response["patch"])) if re.match(keep, op["path"])]
    if not any(re.match(r"^/spec/containers/\d+/volumeMounts$", op["path"]) for op in ops):
        # The pod's own volumes (its token's, named per pod) stay: dscache's are appended instead of
        # the whole list of the pod dscache answered, whose token volume this pod's mounts do not name.
        ops = [
            a
            for op in ops
            for a in (
                [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in op["value"]
                 if v["name"].startswith("dscache-")]
                if op["path"] == "/spec/volumes"
                else [op]
            )
        ]  # fmt: skip
    if no_mounts:
        ops = [
            {**op, "value": [{k: v for k, v in c.items() if k != "volumeMounts"} for c in op["value"]]}
            if op["path"] == "/spec/initContainers"
            else op
            for op in ops
        ]
    return {**response, "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


def cel_literal(value: Any) -> str:
    """A JSON value as a CEL literal: JSON's syntax, every member and element typed `dyn` (CEL's type
    checker wants one value type per map or list literal)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: dyn({cel_literal(v)})" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(f"dyn({cel_literal(v)})" for v in value) + "]"
    return json.dumps(value)


def injected_items(admitted: dict[str, Any]) -> dict[str, Any]:
    """What dscache added to a one-container pod it admitted: its annotation, volumes, init
    containers, and the first container's mounts and env (dscache's items are named `dscache-`)."""
    spec, container = admitted["spec"], admitted["spec"]["containers"][0]
    return {
        "annotations": {
            k: v
            for k, v in admitted["metadata"].get("annotations", {}).items()
            if k.startswith("dscache.io/")
        },
        "volumes": [v for v in spec["volumes"] if v["name"].startswith("dscache-")],
        "initContainers": [c for c in spec["initContainers"] if c["name"].startswith("dscache-")],
        "volumeMounts": [m for m in container["volumeMounts"] if m["name"].startswith("dscache-")],
        "env": container.get("env") or [],
    }


def policy_expression(items: dict[str, Any]) -> str:
    """A MutatingAdmissionPolicy's JSON patch expression adding `items` (injected_items) to any pod:
    appended to the lists (created when absent), init containers first, as dscache's patch does."""

    def add(path: str, value: str) -> str:
        return f'JSONPatch{{op: "add", path: {json.dumps(path)}, value: {value}}}'

    def either(field: str, present: list[str], absent: str) -> str:
        return f"(has({field}) ? [{', '.join(present)}] : [{absent}])"

    annotations = either(
        "object.metadata.annotations",
        [
            add(f"/metadata/annotations/{k.replace('/', '~1')}", json.dumps(v))
            for k, v in items["annotations"].items()
        ],
        add("/metadata/annotations", cel_literal(items["annotations"])),
    )
    volumes = either(
        "object.spec.volumes",
        [add("/spec/volumes/-", cel_literal(v)) for v in items["volumes"]],
        add("/spec/volumes", cel_literal(items["volumes"])),
    )
    inits = either(
        "object.spec.initContainers",
        [add(f"/spec/initContainers/{i}", cel_literal(c)) for i, c in enumerate(items["initContainers"])],
        add("/spec/initContainers", cel_literal(items["initContainers"])),
    )
    per_container = []
    for name in ("volumeMounts", "env"):
        at = f'"/spec/containers/" + string(i) + "/{name}"'
        each = f'{cel_literal(items[name])}.map(x, JSONPatch{{op: "add", path: {at} + "/-", value: x}})'
        whole = f'[JSONPatch{{op: "add", path: {at}, value: {cel_literal(items[name])}}}]'
        per_container.append(f"(has(c.{name}) ? {each} : {whole})")
    containers = f"object.spec.containers.transformList(i, c, {' + '.join(per_container)}).flatten()"
    return " + ".join((annotations, volumes, inits, containers))


def replay(port: int, cert: str, key: str, upstream: str, upstream_ca: str, *, variant: str = "") -> None:
    """A webhook on 127.0.0.1:port that answers each pod with the response dscache gave such a pod.

    Until it holds one, a review is forwarded to dscache's webhook at `upstream` (CA `upstream_ca`)
    and its answer (patch, patchType, warnings) kept: one for a first call and one for a reinvocation
    (the pod already has dscache's init container). Later reviews get the kept answer with their own
    uid, and nothing else is done: dscache's patch without dscache's server. With `variant` (a key of
    VARIANTS), a first call's kept answer has only that part of the patch.
    """
    import aiohttp
    from aiohttp import web

    kept: dict[bool, dict[str, Any]] = {}
    client_ctx = ssl.create_default_context(cafile=upstream_ca)

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        review = json.loads(body)
        pod = review["request"].get("object") or {}
        again = any(c.get("name") == "dscache-prepare" for c in pod["spec"].get("initContainers") or [])
        if again not in kept:
            async with aiohttp.ClientSession() as session:
                headers = {"Content-Type": "application/json"}
                async with session.post(upstream, data=body, headers=headers, ssl=client_ctx) as r:
                    got = await r.json()
            got_answer = {k: v for k, v in got["response"].items() if k != "uid"}
            if variant and not again and "patch" in got_answer:
                got_answer = patch_variant(got_answer, variant)
            kept.setdefault(again, got_answer)
        response = {"uid": review["request"]["uid"], **kept[again]}
        return web.json_response(
            {"apiVersion": review["apiVersion"], "kind": review["kind"], "response": response}
        )

    _serve_https(answer, port, cert, key)


def delta(after: dict[str, Histogram], before: dict[str, Histogram], name: str) -> Histogram:
    return after.get(name, Histogram()).minus(before.get(name, Histogram()))


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User + system CPU of processes and their live and reaped children."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for p in (t for pid in pids for t in process_tree(pid)):
        with suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def peak_rss_mb(pids: tuple[int, ...]) -> float:
    """Sum of the peak RSS (VmHWM) of processes and their children, MiB."""
    total = 0
    for p in (t for pid in pids for t in process_tree(pid)):
        with suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


class Bench:
    def __init__(self, root: Path, src: Path, work: Path, args: argparse.Namespace) -> None:
        state = bed.load_state(root)
        assert state is not None
        self.root, self.src, self.work, self.args = root, src, work, args
        self.kubeconfig = state.kubeconfig
        self.kube = Kube(root, "admin", state.ports["apiserver"])
        self.session = Session(self.kube)
        self.ns = f"dscache-load-{uuid.uuid4().hex[:6]}"
        self.server = str(yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.policy_on, self.binding_spec = True, dict[str, Any]()
        self.by_hand: dict[str, Any] | None = None  # unlabelled bursts' pod, when not the plain one
        self.metrics_port = free_port()

    def kubectl(self, *args: str) -> None:
        cmd = [str(build.binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        subprocess.run(cmd, text=True, check=True, capture_output=True)

    @contextmanager
    def operator(self) -> Iterator[tuple[int, ...]]:
        """The operator's process ids: one, or with `--admission process` the operator without webhooks
        and `admission_alone.py` (the admission server) next to it."""
        paths = [self.src / "operator", self.src / "initcontainer", self.src]
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join(map(str, paths)),
        }
        common = [
            "--namespace", self.ns, "--image", IMAGE, "--installer-api-url", self.server,
            "--peering", self.ns, "--liveness", "",
        ]  # fmt: skip
        webhooks = ["--webhook-dev", "--webhook-port", str(free_port())]
        log = (self.work / "operator.log").open("ab")
        cli = ["-m", "dscache_operator.cli", "run", *common]
        ours = ["--metrics-port", str(self.metrics_port), *webhooks]
        if self.args.admission == "thread":
            commands = [[*cli, *ours]]
        else:
            alone = str(HERE / "admission_alone.py")
            commands = [[*cli, "--metrics-port", str(free_port())], [alone, *common, *ours]]
        procs = [
            subprocess.Popen([sys.executable, *c], stdout=log, stderr=subprocess.STDOUT, env=env)
            for c in commands
        ]
        self.proc = procs[0]
        try:
            yield tuple(p.pid for p in procs)
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for kind in ("mutating", "validating"):
                with suppress(ApiError):
                    self.kube.delete(f"{HOOKS}/{kind}webhookconfigurations/{self.ns}.dscache.io")

    def histograms(self) -> dict[str, Histogram]:
        """The API server's admission histograms of our webhooks, and the operator's own (if any)."""
        text = self.session.get_text("/metrics")
        found = parse_histograms(text, METRIC, "name", f".{self.ns}.dscache.io")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
                ours = r.read().decode()
        except OSError:
            ours = ""
        for hook, hist in parse_histograms(ours, OPERATOR_METRIC, "webhook").items():
            found[f"operator:{hook}"] = hist
        return found

    def setup(self) -> None:
        for crd in ("datasetcache.yaml", "kopf-peering.yaml"):
            self.kubectl("apply", "-f", str(REPO / "crds" / crd))
        self.kube.post("/api/v1/namespaces", {"metadata": {"name": self.ns}})
        claim = {
            "metadata": {"name": CLAIM},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": NO_CLASS,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
        self.kube.post(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims", claim)
        account = f"/api/v1/namespaces/{self.ns}/serviceaccounts/default"
        wait("the default ServiceAccount", lambda: self.kube.get_or_none(account), 60)

    def webhooks_in_force(self) -> None:
        def refused(path: str, body: dict[str, Any]) -> bool:
            status, message = self.session.post(f"{path}?dryRun=All", body)
            return status >= 400 and "dscache" in message.lower() + str(status)

        probe = self.pod("probe", "missing")
        clash = self.cache("probe", source={"s3": {"bucket": "probe"}})
        clash["spec"]["versions"] = [{"dataType": "bench", "source": "s0", "version": "v1"}]
        wait("the pod webhook", lambda: refused(self.pods(), probe), 120)
        self.session.post(f"{DSC}/namespaces/{self.ns}/datasetcaches", self.cache("c-0"))
        dsc = f"{DSC}/namespaces/{self.ns}/datasetcaches"
        wait("the DatasetCache webhook", lambda: refused(dsc, clash), 120)

    def cache(self, name: str, **spec: Any) -> dict[str, Any]:
        slot = name.removeprefix("c-")
        return {
            "apiVersion": "dscache.io/v1alpha1",
            "kind": "DatasetCache",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "source": {"s3": {"bucket": "bench", "endpoint": "http://127.0.0.1:9"}},
                "versions": [{"dataType": "bench", "source": f"s{slot}", "version": "v1"}],
                "volume": {"claimName": CLAIM},
                **spec,
            },
        }

    def pods(self) -> str:
        return f"/api/v1/namespaces/{self.ns}/pods"

    def pod(self, name: str, cache: str | None, burst: str = "probe") -> dict[str, Any]:
        labels = {"bench-burst": burst}
        if cache is not None:
            labels["dscache.io/cache"] = cache
        return {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "schedulerName": NO_SCHEDULER,
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
            },
        }

    def post_all(self, path: str, bodies: list[dict[str, Any]]) -> tuple[float, list[float], list[str]]:
        """(wall seconds, per-request seconds, refusals) for POSTs `concurrency` at a time."""

        def one(body: dict[str, Any]) -> tuple[float, int, str]:
            t0 = time.perf_counter()
            status, message = self.session.post(path, body)
            return time.perf_counter() - t0, status, message

        t0 = time.perf_counter()
        with ThreadPoolExecutor(self.args.concurrency) as pool:
            results = list(pool.map(one, bodies))
        wall = time.perf_counter() - t0
        refused = [f"{status} {message}" for _, status, message in results if status >= 300]
        return wall, [r[0] for r in results], refused

    def create_caches(self, pid: tuple[int, ...]) -> dict[str, Any]:
        m = self.args.caches
        hist0, cpu0 = self.histograms(), cpu_seconds(pid)
        bodies = [self.cache(f"c-{i}") for i in range(1, m)]  # c-0 exists (the webhook probe)
        probes: dict[str, list[float]] = {"labelled": [], "unlabelled": [], "refused": []}
        prober = threading.Thread(target=self.probe, args=(probes,))
        t0 = time.perf_counter()
        prober.start()
        wall, _, refused = self.post_all(f"{DSC}/namespaces/{self.ns}/datasetcaches", bodies)
        hist = self.histograms()

        def current() -> int:
            items = self.kube.get(f"{DSC}/namespaces/{self.ns}/datasetcaches")["items"]
            done = sum(
                1
                for o in items
                if (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")
            )
            return done if done >= m else 0

        try:
            wait("every status current", current, self.args.timeout, every=0.5)
            seconds: float | None = time.perf_counter() - t0
        except SystemExit:
            seconds = None
        prober.join()
        validate = delta(hist, hist0, "validate-datasetcaches")
        own = delta(hist, hist0, "operator:validate-datasetcaches")
        return {
            "caches": m,
            "create_seconds": round(wall, 2),
            "all_current_seconds": round(seconds, 2) if seconds is not None else None,
            "refused": refused[:5],
            "refused_count": len(refused),
            "busy_pod_labelled_p50_ms": round(pct(probes["labelled"], 0.5) * 1000, 1),
            "busy_pod_labelled_p99_ms": round(pct(probes["labelled"], 0.99) * 1000, 1),
            "busy_pod_unlabelled_p50_ms": round(pct(probes["unlabelled"], 0.5) * 1000, 1),
            "busy_pod_unlabelled_p99_ms": round(pct(probes["unlabelled"], 0.99) * 1000, 1),
            "busy_seconds": self.args.busy_seconds,
            "busy_pod_probes": len(probes["labelled"]),
            "busy_pod_refused": len(probes["refused"]),
            "validate_p50_ms": round(validate.quantile(0.5) * 1000, 1),
            "validate_p99_ms": round(validate.quantile(0.99) * 1000, 1),
            "validate_count": validate.count,
            "operator_validate_p50_ms": round(own.quantile(0.5) * 1000, 1),
            "operator_validate_p99_ms": round(own.quantile(0.99) * 1000, 1),
            "operator_cpu_seconds": round(cpu_seconds(pid) - cpu0, 1),
            "operator_peak_rss_mb": round(peak_rss_mb(pid), 1),
        }

    def probe(self, probes: dict[str, list[float]]) -> None:
        """For `--busy-seconds` from the creation of the caches: one pod at a time, labelled then
        unlabelled, as server-side dry runs (nothing stored), every 50 ms; the POST round trips."""
        session = Session(self.kube)
        end = time.monotonic() + self.args.busy_seconds
        while time.monotonic() < end:
            for kind, cache in (("labelled", "c-0"), ("unlabelled", None)):
                t0 = time.perf_counter()
                status, _ = session.post(f"{self.pods()}?dryRun=All", self.pod("busy", cache))
                probes[kind if status < 300 else "refused"].append(time.perf_counter() - t0)
            time.sleep(0.05)

    def burst(self, kind: str, n: int, tag: str) -> tuple[float, list[float], list[str]]:
        labelled = kind == "labelled"
        bodies = [
            self.pod(f"{tag}-{i}", f"c-{i % self.args.caches}" if labelled else None, tag) for i in range(n)
        ]
        if not labelled and self.by_hand is not None:
            bodies = [
                {**self.by_hand, "metadata": {**self.by_hand["metadata"], **b["metadata"]}} for b in bodies
            ]
            for b in bodies:
                b["metadata"]["labels"] = {**self.by_hand["metadata"]["labels"], **b["metadata"]["labels"]}
        result = self.post_all(self.pods(), bodies)
        self.kube.request("DELETE", self.pods(), params={"labelSelector": f"bench-burst={tag}"})
        return result

    def bed_policy(self, on: bool) -> None:
        """Apply the bed's admission policy to the bench's namespace (`on`) or not.

        Off: the policy's binding gets a namespaceSelector that excludes this namespace (the original
        binding is kept and put back by `on`, and by `restore_bed_policy`). Returns once a created pod
        shows the state (the policy sets hostNetwork; configurations apply asynchronously).
        """
        if self.policy_on == on:
            return
        binding = self.kube.get(BINDING)
        if not self.binding_spec:
            self.binding_spec = binding["spec"]
        spec = dict(self.binding_spec)
        if not on:
            spec["matchResources"] = {
                **(spec.get("matchResources") or {}),
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [self.ns]}
                    ]
                },
            }
        self.kube.request("PUT", BINDING, {**binding, "spec": spec})
        self.policy_on = on

        def in_force() -> bool:
            name = f"policy-check-{uuid.uuid4().hex[:6]}"
            pod = self.kube.post(self.pods(), self.pod(name, None))
            self.kube.delete(f"{self.pods()}/{name}")
            return bool(pod["spec"].get("hostNetwork")) == on

        wait(f"the bed's policy {'on' if on else 'off'}", in_force, 60, every=0.5)

    def restore_bed_policy(self) -> None:
        if self.binding_spec and not self.policy_on:
            binding = self.kube.get(BINDING)
            self.kube.request("PUT", BINDING, {**binding, "spec": self.binding_spec})
            self.policy_on = True

    def bursts(self, pid: tuple[int, ...]) -> dict[str, dict[str, Any]]:
        """Burst measures per state of the bed's policy (`--bed-policy`), the states alternating by
        round as the kinds do within one."""
        n, conc, rounds = self.args.pods, self.args.concurrency, self.args.rounds
        states = POLICY_STATES[self.args.bed_policy]
        walls = {s: {"unlabelled": 0.0, "labelled": 0.0} for s in states}
        lat: dict[str, dict[str, list[float]]] = {s: {"unlabelled": [], "labelled": []} for s in states}
        refused: dict[str, list[str]] = {s: [] for s in states}
        hooks = {s: {"mutate-pods": Histogram(), "operator:mutate-pods": Histogram()} for s in states}
        cpu = dict.fromkeys(states, 0.0)
        per_round: dict[str, list[float]] = {s: [] for s in states}
        for r in range(rounds):
            for state in states if r % 2 == 0 else states[::-1]:
                self.bed_policy(state == "with")
                for kind in ("unlabelled", "labelled"):
                    self.burst(kind, conc, f"warm-{kind}")
                hist0, cpu0 = self.histograms(), cpu_seconds(pid)
                this: dict[str, float] = {}
                for kind in ("unlabelled", "labelled") if r % 2 == 0 else ("labelled", "unlabelled"):
                    wall, each, no = self.burst(kind, n, f"{kind[0]}{r}")
                    this[kind] = wall
                    walls[state][kind] += wall
                    lat[state][kind] += each
                    refused[state] += no
                per_round[state].append(this["labelled"] / this["unlabelled"])
                hist = self.histograms()
                cpu[state] += cpu_seconds(pid) - cpu0
                for name in hooks[state]:
                    hooks[state][name] = hooks[state][name].plus(delta(hist, hist0, name))
        out = {}
        for state in states:
            mutate, own = hooks[state]["mutate-pods"], hooks[state]["operator:mutate-pods"]
            unl, lab = walls[state]["unlabelled"], walls[state]["labelled"]
            out[state] = {
                "bed_policy": state,
                "pods": n,
                "concurrency": conc,
                "rounds": rounds,
                "unlabelled_burst_seconds": round(unl / rounds, 2),
                "labelled_burst_seconds": round(lab / rounds, 2),
                "ratio": round(lab / unl, 2),
                "round_ratios": [round(x, 2) for x in per_round[state]],
                "ratio_median": round(statistics.median(per_round[state]), 2),
                "client_unlabelled_p50_ms": round(pct(lat[state]["unlabelled"], 0.5) * 1000, 1),
                "client_unlabelled_p99_ms": round(pct(lat[state]["unlabelled"], 0.99) * 1000, 1),
                "client_labelled_p50_ms": round(pct(lat[state]["labelled"], 0.5) * 1000, 1),
                "client_labelled_p99_ms": round(pct(lat[state]["labelled"], 0.99) * 1000, 1),
                "webhook_p50_ms": round(mutate.quantile(0.5) * 1000, 1),
                "webhook_p99_ms": round(mutate.quantile(0.99) * 1000, 1),
                "webhook_count": mutate.count,
                "operator_webhook_p50_ms": round(own.quantile(0.5) * 1000, 1),
                "operator_webhook_p99_ms": round(own.quantile(0.99) * 1000, 1),
                "refused": refused[state][:5],
                "refused_count": len(refused[state]),
                "operator_cpu_seconds": round(cpu[state], 1),
                "operator_peak_rss_mb": round(peak_rss_mb(pid), 1),
            }
        return out

    def floors(self, pid: tuple[int, ...], workdir: Path) -> dict[str, dict[str, dict[str, Any]]]:
        """Burst ratios with the pod webhook changed, each a server in another process or dscache's:
        dscache's without reinvocation; a replay of dscache's answers (its patch without its server),
        with reinvocation IfNeeded and Never; an allow-all webhook with no patch (any webhook's floor) and
        with a one-label patch (any patch's floor); replays of parts of dscache's patch (VARIANTS). Only
        the configurations whose label matches `--floor`; each per state of the bed's policy."""
        path = f"{HOOKS}/mutatingwebhookconfigurations/{self.ns}.dscache.io"
        hook = self.kube.get(path)["webhooks"][0]
        ours = hook["clientConfig"]
        certs = devcerts.generate(workdir, "127.0.0.1")
        ours_ca = workdir / "dscache-ca.pem"
        ours_ca.write_bytes(base64.b64decode(ours["caBundle"]))
        spawn = multiprocessing.get_context("spawn")
        ratios: dict[str, dict[str, dict[str, Any]]] = {}

        def measure(label: str, reinvocation: str, client: dict[str, Any]) -> None:
            config = self.kube.get(path)
            config["webhooks"][0]["reinvocationPolicy"] = reinvocation
            config["webhooks"][0]["clientConfig"] = client
            self.kube.request("PUT", path, config)
            time.sleep(3)  # configurations apply asynchronously
            ratios[label] = self.bursts(pid)

        def server(
            target: Callable[..., None], extra: tuple[str, ...], kwargs: dict[str, str]
        ) -> tuple[Any, dict[str, Any]]:
            port = free_port()
            args = (port, str(certs.cert), str(certs.key), *extra)
            proc = spawn.Process(target=target, args=args, kwargs=kwargs, daemon=True)
            proc.start()
            client = {
                "url": f"https://127.0.0.1:{port}/{ours['url'].rsplit('/', 1)[1]}",
                "caBundle": base64.b64encode(certs.ca.read_bytes()).decode(),
            }
            return proc, client

        flip = _flip(hook["reinvocationPolicy"])
        upstream = (ours["url"], str(ours_ca))
        Server = tuple[Callable[..., None], tuple[str, ...], dict[str, str]]
        configs: list[tuple[str, str, Server | None]] = [
            (f"dscache, reinvocationPolicy {flip}", flip, None),
            *((f"replay of dscache's answers, reinvocationPolicy {r}", r, (replay, upstream, {}))
              for r in ("IfNeeded", "Never")),
            *((f"replay of dscache's answers, {v}", "Never", (replay, upstream, {"variant": v}))
              for v in VARIANTS),
            ("allow-all webhook, no patch", "Never", (allow_all, (), {})),
            ("allow-all webhook, a one-label patch", "Never", (allow_all, (json.dumps(ONE_LABEL),), {})),
        ]  # fmt: skip
        by_hand = "dscache's webhook, against unlabelled pods that carry dscache's items by hand"
        if re.search(self.args.floor, by_hand):
            self.by_hand = self.admitted_pod()
            try:
                ratios[by_hand] = self.bursts(pid)
            finally:
                self.by_hand = None
        policy = "one MutatingAdmissionPolicy adding dscache's items to every labelled pod, no webhook call"
        if re.search(self.args.floor, policy):
            ratios[policy] = self.single_policy(path, pid)
        for label, reinvocation, spec in configs:
            if not re.search(self.args.floor, label):
                continue
            if spec is None:
                measure(label, reinvocation, ours)
                continue
            proc, client = server(*spec)
            try:
                measure(label, reinvocation, client)
            finally:
                proc.kill()
        return ratios

    def admitted_pod(self) -> dict[str, Any]:
        """A labelled burst pod as dscache's webhook admits it (a server-side dry run), without its
        cache label and what the API server adds itself (its token volume, ids, status)."""
        admitted = self.kube.post(f"{self.pods()}?dryRun=All", self.pod("by-hand", "c-0"))
        meta = admitted["metadata"]
        labels = {k: v for k, v in meta["labels"].items() if k != "dscache.io/cache"}
        spec = {k: v for k, v in admitted["spec"].items() if k not in ("priority", "preemptionPolicy")}
        spec["volumes"] = [v for v in spec["volumes"] if not v["name"].startswith("kube-api-access")]
        for c in [*spec["containers"], *spec["initContainers"]]:
            c["volumeMounts"] = [m for m in c["volumeMounts"] if not m["name"].startswith("kube-api-access")]
        return {"metadata": {"labels": labels, "annotations": meta.get("annotations") or {}}, "spec": spec}

    def single_policy(self, hook_path: str, pid: tuple[int, ...]) -> dict[str, dict[str, Any]]:
        """The floor of any design that injects without a webhook call: one MutatingAdmissionPolicy
        and binding (no parameters, no lookup per pod) adding the items dscache's webhook added to a
        burst pod (`injected_items`) to every labelled pod of the bench's namespace, and the pod
        webhook skipping pods that already have dscache's init container."""
        items = injected_items(self.kube.post(f"{self.pods()}?dryRun=All", self.pod("items", "c-0")))
        name = f"{self.ns}.bench-floor"
        policy = {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "matchConstraints": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.ns}},
                    "objectSelector": {
                        "matchExpressions": [{"key": "dscache.io/cache", "operator": "Exists"}]
                    },
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                },
                "mutations": [
                    {"patchType": "JSONPatch", "jsonPatch": {"expression": policy_expression(items)}}
                ],
            },
        }
        binding = {"metadata": {"name": name}, "spec": {"policyName": name}}
        config = self.kube.get(hook_path)
        original = json.loads(json.dumps(config["webhooks"][0]))
        skip = "!object.spec.?initContainers.orValue([]).exists(c, c.name == 'dscache-prepare')"
        config["webhooks"][0]["matchConditions"] = [{"name": "not-injected", "expression": skip}]
        self.kube.request("PUT", hook_path, config)
        self.kube.post(f"{HOOKS}/mutatingadmissionpolicies", policy)
        self.kube.post(f"{HOOKS}/mutatingadmissionpolicybindings", binding)
        try:
            time.sleep(3)  # configurations apply asynchronously
            return self.bursts(pid)
        finally:
            self.kube.delete(f"{HOOKS}/mutatingadmissionpolicybindings/{name}")
            self.kube.delete(f"{HOOKS}/mutatingadmissionpolicies/{name}")
            config = self.kube.get(hook_path)
            config["webhooks"][0] = original
            self.kube.request("PUT", hook_path, config)

    def teardown(self) -> None:
        """Delete the caches while the operator runs (it removes their finalizers), then the namespace.

        Not the namespace first: it would delete kopf's peering object in it, and kopf would not
        finalize the caches that still wait for it.
        """
        caches = f"{DSC}/namespaces/{self.ns}/datasetcaches"
        with suppress(ApiError):
            self.kube.request("DELETE", caches)

        def no_caches() -> bool:
            return not self.kube.get(caches)["items"]

        with suppress(SystemExit):
            wait("the caches to be finalized", no_caches, 300, every=1)
        with suppress(ApiError):
            self.kube.delete(f"/api/v1/namespaces/{self.ns}")


def _flip(policy: str) -> str:
    return "Never" if policy == "IfNeeded" else "IfNeeded"


def table(caches: dict[str, Any], pods: dict[str, Any]) -> str:
    """The issue's measures as a markdown table, each with its target and whether it was met."""

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def pair(a: float, b: float, unit: str) -> str:
        return f"{a:.0f} / {b:.0f} {unit}"

    current = caches["all_current_seconds"]
    rss = max(caches["operator_peak_rss_mb"], pods["operator_peak_rss_mb"])
    burst = f"{pods['labelled_burst_seconds']:.2f} s / {pods['unlabelled_burst_seconds']:.2f} s"
    hook50, hook99 = pods["webhook_p50_ms"], pods["webhook_p99_ms"]
    rows = [
        ("labelled / unlabelled burst", f"{pods['ratio']:.2f}x ({burst})", "<= 1.2x",
         mark(pods["ratio"] <= TARGETS["ratio"])),
        ("pod webhook p50 / p99 (API server)", pair(hook50, hook99, "ms"), "<= 100 / 500 ms",
         mark(hook50 <= TARGETS["p50"] * 1000 and hook99 <= TARGETS["p99"] * 1000)),
        ("pod review in the operator p50 / p99", pair(pods["operator_webhook_p50_ms"],
         pods["operator_webhook_p99_ms"], "ms"), "", ""),
        ("pod POST p50 / p99, labelled (client)",
         pair(pods["client_labelled_p50_ms"], pods["client_labelled_p99_ms"], "ms"), "", ""),
        ("pod POST p50 / p99, unlabelled (client)",
         pair(pods["client_unlabelled_p50_ms"], pods["client_unlabelled_p99_ms"], "ms"), "", ""),
        ("pods refused (bursts + after creating the caches)",
         f"{pods['refused_count']} + {caches['busy_pod_refused']}", "0",
         mark(pods["refused_count"] + caches["busy_pod_refused"] == 0)),
        (f"{caches['caches']} DatasetCaches: every status current",
         "never" if current is None else f"{current:.1f} s", "<= 30 s",
         mark(current is not None and current <= TARGETS["current_s"])),
        (f"pod POST p50 / p99 in the {caches['busy_seconds']:g} s after creating them, labelled (client)",
         pair(caches["busy_pod_labelled_p50_ms"], caches["busy_pod_labelled_p99_ms"], "ms"), "", ""),
        (f"pod POST p50 / p99 in the {caches['busy_seconds']:g} s after creating them, unlabelled (client)",
         pair(caches["busy_pod_unlabelled_p50_ms"], caches["busy_pod_unlabelled_p99_ms"], "ms"), "", ""),
        ("DatasetCache webhook p50 / p99 (API server)",
         pair(caches["validate_p50_ms"], caches["validate_p99_ms"], "ms"), "", ""),
        ("DatasetCache review in the operator p50 / p99", pair(caches["operator_validate_p50_ms"],
         caches["operator_validate_p99_ms"], "ms"), "", ""),
        ("DatasetCaches refused", str(caches["refused_count"]), "0", mark(caches["refused_count"] == 0)),
        ("operator CPU: caches / bursts",
         f"{caches['operator_cpu_seconds']:.1f} s / {pods['operator_cpu_seconds']:.1f} s", "", ""),
        ("operator peak RSS", f"{rss:.0f} MB", "< 300 MB", mark(rss < TARGETS["rss_mb"])),
    ]  # fmt: skip
    lines = ["| measure | value | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bed", type=Path, default=Path(os.environ.get("DSCACHE_TESTBED_DIR") or "/tmp/dscache-testbed")
    )
    parser.add_argument(
        "--src", type=Path, default=REPO, help="checkout whose operator runs (default: this one)"
    )
    parser.add_argument("--caches", type=int, default=500)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="bursts of each kind, in alternating order")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for current statuses")
    parser.add_argument(
        "--busy-seconds",
        type=float,
        default=BUSY,
        help="seconds of admission probes",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="then the bursts again: dscache's webhook without reinvocation, an allow-all webhook",
    )
    parser.add_argument(
        "--floor", default="", help="with --floors: only the configurations whose label matches this regex"
    )
    parser.add_argument(
        "--admission",
        choices=("thread", "process"),
        default="thread",
        help="the operator's own admission thread, or the admission server in a process of its own "
        "(admission_alone.py) next to the operator without webhooks",
    )
    parser.add_argument(
        "--bed-policy",
        choices=sorted(POLICY_STATES),
        default="both",
        help="bursts with the bed's admission policy on the bench's pods, without it (the namespace "
        "excluded from its binding for the run), or both, alternating by round",
    )
    args = parser.parse_args()
    root = args.bed.resolve()
    if not bed.status(root).get("apiserver_ready"):
        raise SystemExit(f"no running test bed in {root}: run `hack/testbed up --dir {root}` first")
    load_start = [round(x, 1) for x in os.getloadavg()]  # a shared machine: say how busy it was
    with tempfile.TemporaryDirectory(prefix="dscache-bench-load-") as tmp:
        bench = Bench(root, args.src.resolve(), Path(tmp), args)
        bench.setup()
        try:
            with bench.operator() as pid:
                bench.webhooks_in_force()
                caches = bench.create_caches(pid)
                pods = bench.bursts(pid)
                floors = bench.floors(pid, Path(tmp)) if args.floors else {}
                bench.restore_bed_policy()
                bench.teardown()
        except BaseException:
            print(f"operator log: {(Path(tmp) / 'operator.log').read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            bench.restore_bed_policy()
    load = {"start": load_start, "end": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count()}
    print(json.dumps({"caches": caches, "pods": pods, "floors": floors, "load_average": load}, indent=2))
    states = POLICY_STATES[args.bed_policy]
    print(f"(bed's admission policy: {states[0]})")
    print(table(caches, pods[states[0]]))
    for label, by_state in [("dscache", pods), *floors.items()]:
        for state, got in by_state.items():
            burst = f"{got['labelled_burst_seconds']:.2f} s / {got['unlabelled_burst_seconds']:.2f} s"
            hook = f"webhook {got['webhook_p50_ms']:.0f} / {got['webhook_p99_ms']:.0f} ms"
            rounds = ", ".join(f"{x:.2f}" for x in got["round_ratios"])
            rounds += f"; median {got['ratio_median']:.2f}x"
            if got["refused_count"]:
                rounds += f"; REFUSED {got['refused_count']}: {got['refused'][0]}"
            print(
                f"| labelled / unlabelled burst, {label}, {state} the bed's policy | "
                f"{got['ratio']:.2f}x ({burst}; {hook}; rounds {rounds}) | | |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
