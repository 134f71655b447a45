"""`dscache-operator`: run the operator (`run`) or print the CRD (`crd`).

A local run against any cluster (credentials from KUBECONFIG; installer Jobs still run in the cluster):

    kubectl apply -f crds/datasetcache.yaml -f crds/kopf-peering.yaml
    dscache-operator run --namespace ml --image ghcr.io/dscache/dscache:0.1.0

Flags default from DSCACHE_OPERATOR_<FLAG> variables (e.g. DSCACHE_OPERATOR_IMAGE).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from dscache_operator import settings as settings_mod

# Newer instances win peering (kopf pauses the lower priority): with the Recreate strategy the new
# replica takes over from a lingering old one instead of both acting.
PRIORITY_EPOCH = 1_700_000_000


def build_parser() -> argparse.ArgumentParser:
    env = settings_mod.from_env()
    parser = argparse.ArgumentParser(prog="dscache-operator", description="The dscache control plane.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster")
    run.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all",
    )
    run.add_argument(
        "--image", default=env.get("image", settings_mod.DEFAULT_IMAGE), help="image of installer Jobs"
    )
    run.add_argument(
        "--installer-api-url",
        default=env.get("installer_api_url"),
        help="API server URL for installer Jobs' status reports (default: their in-cluster service env)",
    )
    run.add_argument("--peering", default=env.get("peering", "dscache"), help="kopf peering name")
    run.add_argument("--priority", type=int, help="peering priority (default: start time, newest wins)")
    run.add_argument("--standalone", action="store_true", help="no peering (only for a throwaway local run)")
    run.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="health endpoint URL, or ''")
    run.add_argument(
        "--metrics-port", type=int, default=int(env.get("metrics_port", 9090)), help="0 disables"
    )
    run.add_argument("--verbose", action="store_true")
    sub.add_parser("crd", help="print the DatasetCache CRD (crds/datasetcache.yaml)")
    return parser


def _run(args: argparse.Namespace) -> int:
    import kopf

    import dscache_operator.handlers  # noqa: F401  (registers the handlers)
    from dscache_operator.settings import Settings

    ours = Settings(
        image=args.image,
        installer_api_url=args.installer_api_url or None,
        namespaces=tuple(args.namespace),
        peering_name=args.peering,
        standalone=args.standalone,
        liveness_url=args.liveness or None,
        metrics_port=args.metrics_port or None,
    )
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
    priority = args.priority if args.priority is not None else int(time.time() * 1000) - PRIORITY_EPOCH * 1000
    asyncio.run(
        kopf.operator(
            clusterwide=not ours.namespaces,
            namespaces=list(ours.namespaces),
            standalone=ours.standalone,
            peering_name=ours.peering_name,
            priority=priority,
            liveness_endpoint=ours.liveness_url,
            memo=kopf.Memo(dscache_settings=ours),
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "crd":
        from dscache_operator.crd import render

        sys.stdout.write(render())
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
