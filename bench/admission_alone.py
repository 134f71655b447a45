"""The admission server alone, in a process of its own: `bench_load.py --admission process` (issue 17).

    python bench/admission_alone.py <the flags of `dscache-operator run`>

Serves what the operator's admission thread serves (`AdmissionServer`: webhooks, /readyz, its own
watch-fed index, dev-mode registration) and /metrics on `--metrics-port`, until SIGTERM. The bench
runs the operator without webhooks next to it, to measure admission that never shares an interpreter
(its GIL) with kopf against the thread. A measuring device, not a way to deploy the operator.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from dscache_operator import metrics
from dscache_operator.admissionserver import SWITCH_INTERVAL, AdmissionServer
from dscache_operator.cli import build_parser
from dscache_operator.kube import Kube
from dscache_operator.settings import load


def main() -> int:
    ours = load(vars(build_parser().parse_args(["run", *sys.argv[1:]])), os.environ)
    if ours.metrics_port:
        metrics.serve(ours.metrics_port)
    sys.setswitchinterval(SWITCH_INTERVAL)
    server = AdmissionServer(ours, Kube.connect)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(1) and not server.failed.is_set():
        pass
    server.stop()
    return 1 if server.failed.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
