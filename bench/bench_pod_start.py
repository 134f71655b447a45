"""Benchmark pod start with the webhook on the test bed's real node (issues 6 and 13).

    hack/testbed up          # once; the benchmark uses the running bed ($DSCACHE_TESTBED_DIR or default)
    python bench/bench_pod_start.py [--pods 30] [--files 2000]

Time from pod creation (POST) to the main container's first instruction (both on the boot-time
clock), with a warm cache, for (a) a scratch hit (hostPath scratch already holds the version) and
(b) links to the shared volume; p50 and p99 over `--pods` pods, created one after another. The
breakdown says where the time goes:
- admission: the POST round trip, which includes the API server calling the operator's webhook
  (the webhook's own share: labelled vs unlabelled server-side dry runs);
- prepare: the same `dscache prepare` command, run standalone against the same directories;
- the rest: scheduling, the kubelet, containerd and runc starting the pod sandbox and both
  containers (the project image's init container, the busybox workload); a pod without dscache (no
  label, one container) gives the node's own floor for comparison.
The data source is a bucket on a local moto S3 server (127.0.0.1), which the installer Job reaches
from its container on the host network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "hack")]

import yaml  # noqa: E402
from dscache_testbed import bed, build, images  # noqa: E402
from dscache_testbed.kube import ApiError, Kube  # noqa: E402
from dscache_testbed.polling import wait  # noqa: E402

from dscache.api.names import VersionKey  # noqa: E402
from tests.factories import make_tree, publish_archives  # noqa: E402
from tests.servers.s3 import MotoS3  # noqa: E402

KEY = VersionKey("bench", "gen", "v1")
IMAGE = images.project_ref()  # the chart's default reference, under which the bed loads the image
HOOKS = "/apis/admissionregistration.k8s.io/v1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bench:
    def __init__(self, root: Path, work: Path, files: int) -> None:
        state = bed.load_state(root)
        assert state is not None
        self.root, self.work, self.files = root, work, files
        self.kubeconfig = state.kubeconfig
        self.kube = Kube(root, "admin", state.ports["apiserver"])
        self.ns = f"dscache-bench-{uuid.uuid4().hex[:6]}"
        # the one host dir the operator allows: a real hostPath, under the bed's dir
        self.host_scratch = str(root / "hostpath" / self.ns / "scratch")
        self.server = str(yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])

    def kubectl(self, *args: str, stdin: str | None = None) -> None:
        cmd = [str(build.binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True)

    def publish(self, s3: MotoS3) -> dict[str, Any]:
        """A version of `files` small files plus one 20 MiB file, published as archives to a bucket;
        returns the DatasetCache source for it."""
        spec: dict[str, int | str] = {f"d{i // 100}/f{i}.bin": 4096 for i in range(self.files)}
        spec["big.bin"] = 20 * 1024 * 1024
        spec["check.txt"] = "dscache"
        tree = make_tree(self.work / "tree", spec)
        remote = self.work / "remote"
        publish_archives(tree, remote, KEY, archive_size=8 * 1024 * 1024)
        bucket = s3.new_bucket("dscache-bench")
        for path in sorted(p for p in remote.rglob("*") if p.is_file()):
            key = f"data/{path.relative_to(remote).as_posix()}"
            s3.client().put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        return {
            "s3": {
                "bucket": bucket,
                "prefix": "data",
                "endpoint": s3.direct_endpoint,
                "region": "us-east-1",
                "secretRef": {"name": "s3-creds"},
            }
        }

    @contextmanager
    def operator(self) -> Iterator[None]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        args = [
            "dscache-operator", "run", "--namespace", self.ns, "--image", IMAGE,
            "--installer-api-url", self.server, "--peering", self.ns, "--liveness", "",
            "--metrics-port", "0", "--webhook-dev", "--webhook-port", str(free_port()),
            "--scratch-host-path", self.host_scratch,
        ]  # fmt: skip
        log = (self.work / "operator.log").open("ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            yield
        finally:
            proc.terminate()
            proc.wait(30)
            for kind in ("mutating", "validating"):
                with suppress(ApiError):
                    self.kube.delete(f"{HOOKS}/{kind}webhookconfigurations/{self.ns}.dscache.io")

    def pods(self) -> str:
        return f"/api/v1/namespaces/{self.ns}/pods"

    def pod(self, name: str, scratch: str | None, labelled: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if labelled:
            meta["labels"] = {"dscache.io/cache": "bench"}
            meta["annotations"] = {"dscache.io/scratch": scratch or "none"}
        # The first instruction prints the boot-time clock (busybox's date has no sub-second format;
        # /proc/uptime and the host's CLOCK_BOOTTIME are the same clock, 10 ms resolution).
        script = 'cut -d" " -f1 /proc/uptime; test "$(cat "$DSCACHE_BENCH_GEN/check.txt")" = dscache'
        if not labelled:
            script = 'cut -d" " -f1 /proc/uptime'
        return {
            "metadata": meta,
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}],
            },
        }

    def setup(self, source: dict[str, Any]) -> None:
        for crd in ("datasetcache.yaml", "kopf-peering.yaml"):
            self.kubectl("apply", "-f", str(REPO / "crds" / crd))
        self.kube.post("/api/v1/namespaces", {"metadata": {"name": self.ns}})
        account = f"/api/v1/namespaces/{self.ns}/serviceaccounts/default"
        wait("default ServiceAccount", lambda: self.kube.get_or_none(account), every=0.01)
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}
        secret = {"metadata": {"name": "s3-creds"}, "stringData": creds}
        self.kube.post(f"/api/v1/namespaces/{self.ns}/secrets", secret)
        body = {
            "apiVersion": "dscache.io/v1alpha1",
            "kind": "DatasetCache",
            "metadata": {"name": "bench", "namespace": self.ns},
            "spec": {
                "source": source,
                "versions": [{"dataType": KEY.data_type, "source": KEY.source, "version": KEY.version}],
                "volume": {"create": {"size": "10Gi"}},
            },
        }
        self.kubectl("apply", "-f", "-", stdin=json.dumps(body))
        path = f"/apis/dscache.io/v1alpha1/namespaces/{self.ns}/datasetcaches/bench"
        wait(
            "DatasetCache Ready",
            lambda: (self.kube.get(path).get("status") or {}).get("phase") == "Ready",
            600,
            0.01,
        )

        def webhook_in_force() -> bool:
            probe = self.pod("probe", None)
            probe["metadata"]["labels"]["dscache.io/cache"] = "missing"
            try:
                self.kube.request("POST", self.pods(), probe, params={"dryRun": "All"})
            except ApiError:
                return True
            return False

        wait("webhook", webhook_in_force, 60, 0.2)

    def start_once(self, name: str, scratch: str | None, labelled: bool = True) -> tuple[float, float]:
        """(admission seconds, creation-to-main-start seconds) of one pod."""
        t0 = time.clock_gettime(time.CLOCK_BOOTTIME)
        self.kube.post(self.pods(), self.pod(name, scratch, labelled))
        admitted = time.clock_gettime(time.CLOCK_BOOTTIME)

        def finished() -> str | None:
            phase = (self.kube.get(f"{self.pods()}/{name}").get("status") or {}).get("phase")
            return phase if phase in ("Succeeded", "Failed") else None

        phase = wait(f"pod {name} done", finished, every=0.05)
        logs = [str(build.binary("kubectl")), f"--kubeconfig={self.kubeconfig}", "logs", "-n", self.ns, name]
        out = subprocess.run([*logs, "-c", "main"], capture_output=True, text=True, check=False).stdout
        if phase != "Succeeded":
            raise SystemExit(f"pod {name} {phase}: {out}")
        started = float(out.split("\n", 1)[0])  # the workload's first instruction
        self.kube.delete(f"{self.pods()}/{name}", {"gracePeriodSeconds": 0})
        return admitted - t0, started - t0

    def claim_dir(self) -> Path:
        pvc = self.kube.get(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/bench-dscache")
        pv = self.kube.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        return Path(pv["spec"]["hostPath"]["path"])

    def prepare_standalone(self, scratch: Path | None, runs: int) -> list[float]:
        """The init container's command, same cache and scratch directories, timed with process start."""
        links = self.work / "links"
        args = ["dscache", "prepare", "--cache", str(self.claim_dir()), "--links", str(links)]
        args += ["--ref", f"{self.ns}.bench", "--wait", "0"]
        if scratch is not None:
            args += ["--scratch", str(scratch)]
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        return times

    def admissions(self, labelled: bool, runs: int) -> list[float]:
        times = []
        for i in range(runs):
            pod = self.pod(f"dry-{i}", "none", labelled)
            t0 = time.perf_counter()
            self.kube.request("POST", self.pods(), pod, params={"dryRun": "All"})
            times.append(time.perf_counter() - t0)
        return times


def ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 0.5) * 1000, 1), "p99_ms": round(pct(values, 0.99) * 1000, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    root = Path(os.environ.get("DSCACHE_TESTBED_DIR") or "/tmp/dscache-testbed")
    if not bed.status(root).get("apiserver_ready"):
        raise SystemExit(f"no running test bed in {root}: run `hack/testbed up` first")
    with tempfile.TemporaryDirectory(prefix="dscache-bench-pods-") as tmp:
        bench = Bench(root, Path(tmp), args.files)
        s3 = MotoS3().start()
        source = bench.publish(s3)
        host_dir = Path(bench.host_scratch)
        host_scratch = bench.host_scratch
        results: dict[str, Any] = {"pods": args.pods, "files": args.files + 2}
        try:
            with bench.operator():
                bench.setup(source)
                modes = (("scratch-hit", f"hostPath:{host_scratch}"), ("shared-volume-link", None))
                for mode, scratch in modes:
                    bench.start_once(f"warm-{mode}", scratch)  # fills scratch, warms the page cache
                    runs = [bench.start_once(f"{mode}-{i}", scratch) for i in range(args.pods)]
                    admit, total = [r[0] for r in runs], [r[1] for r in runs]
                    local = host_dir if scratch else None
                    prep = bench.prepare_standalone(local, args.pods)
                    p50 = pct(total, 0.5)
                    results[mode] = {
                        "pod_start": ms(total),
                        "admission": ms(admit),
                        "prepare_standalone": ms(prep),
                        "share_of_p50": {
                            "admission": round(pct(admit, 0.5) / p50, 3),
                            "prepare": round(pct(prep, 0.5) / p50, 3),
                            "rest": round(1 - (pct(admit, 0.5) + pct(prep, 0.5)) / p50, 3),
                        },
                    }
                bench.start_once("warm-baseline", None, labelled=False)
                runs = [bench.start_once(f"baseline-{i}", None, labelled=False) for i in range(args.pods)]
                results["baseline_pod_without_dscache"] = {"pod_start": ms([r[1] for r in runs])}
                results["dry_run_admission"] = {
                    "labelled_webhook": ms(bench.admissions(True, args.pods)),
                    "unlabelled": ms(bench.admissions(False, args.pods)),
                }
        finally:
            with suppress(ApiError):
                bench.kube.delete(f"/api/v1/namespaces/{bench.ns}")
            shutil.rmtree(host_dir.parent, ignore_errors=True)
            s3.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
