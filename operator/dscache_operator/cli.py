"""`dscache-operator`: run the operator (`run`) or print the CRD (`crd`).

A local run against any cluster (credentials from KUBECONFIG; installer Jobs still run in the cluster):

    kubectl apply -f crds/datasetcache.yaml -f crds/kopf-peering.yaml
    dscache-operator run --namespace ml --image ghcr.io/dscache/dscache:0.1.0

Every flag of `run` may be set by a DSCACHE_OPERATOR_<FLAG> variable instead (e.g.
DSCACHE_OPERATOR_IMAGE, DSCACHE_OPERATOR_WEBHOOK_PORT); a flag beats its variable. Both are derived
from `settings.Settings`, where the defaults live. A bad value is refused with one line naming the
flag or variable, exit code 2; so is a run without the operator extra (kopf...), without Kubernetes
credentials, with a port to listen on already taken, or with an API server that does not answer
(`preflight`), before kopf starts.

The admission webhook (pod injection, DatasetCache validation) is off unless enabled:
- in a cluster: `--webhook-cert /certs/tls.crt --webhook-key /certs/tls.key` (a mounted Secret) on
  `--webhook-port` (9443); the Mutating/ValidatingWebhookConfiguration (paths `/mutate-pods`,
  `/validate-datasetcaches`) belong to the Helm chart;
- dev mode for the test bed and local runs: `--webhook-dev` generates a CA and registers URL
  webhook configurations named `<peering>.dscache.io` pointing at `https://<webhook-host>:<port>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence

from dscache_operator.preflight import (
    api_problem,
    client_problem,
    credentials_problem,
    missing_dependency,
    ports_problem,
)
from dscache_operator.settings import OPTIONS, Settings, SettingsError, describe, load

# Newer instances win peering (kopf pauses the lower priority): of the chart's replicas (all serving
# admission) the newest reconciles, and a rollout's new pod takes over from the old ones at once.
PRIORITY_EPOCH = 1_700_000_000
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The parser; `run`'s flags come from settings.OPTIONS and default to None (not given)."""
    parser = argparse.ArgumentParser(
        prog="dscache-operator", description="The dscache control plane.", allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run the operator against the current kubeconfig or in-cluster", allow_abbrev=False
    )
    groups: dict[str | None, argparse._ActionsContainer] = {None: run}
    for option in OPTIONS:
        if option.group not in groups:
            groups[option.group] = run.add_argument_group(option.group)
        target = groups[option.group]
        if option.kind == "switch":
            target.add_argument(option.flag, action=argparse.BooleanOptionalAction, help=describe(option))
        elif option.kind == "list":
            target.add_argument(option.flag, action="append", help=describe(option))
        else:
            target.add_argument(option.flag, help=describe(option))
    sub.add_parser("crd", help="print the DatasetCache CRD (crds/datasetcache.yaml)", allow_abbrev=False)
    return parser


def _run(ours: Settings) -> int:
    import kopf

    import dscache_operator.handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=ours.verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
    priority = ours.priority
    if priority is None:
        priority = int(time.time() * 1000) - PRIORITY_EPOCH * 1000
    server = None
    if ours.webhook.enabled:  # admission in its own thread and loop, never behind reconciliation
        from dscache_operator.admissionserver import SWITCH_INTERVAL, AdmissionServer
        from dscache_operator.kube import Kube

        sys.setswitchinterval(SWITCH_INTERVAL)
        server = AdmissionServer(ours, Kube.connect)
        try:
            server.start()
        except OSError as err:
            print(f"dscache-operator: the webhook server cannot start: {err}", file=sys.stderr)
            return 1

    async def operate() -> None:
        stop = asyncio.Event()  # set if the admission server fails: the operator stops too
        if server is not None:
            server.on_failure(asyncio.get_running_loop(), stop.set)
        await kopf.operator(
            clusterwide=not ours.namespaces,
            namespaces=list(ours.namespaces),
            standalone=ours.standalone,
            peering_name=ours.peering_name,
            priority=priority,
            liveness_endpoint=ours.liveness_url,
            memo=kopf.Memo(dscache_settings=ours),
            stop_flag=stop,
        )

    try:
        asyncio.run(operate())
    finally:
        if server is not None:
            server.stop()
    return 1 if server is not None and server.failed.is_set() else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "crd":
        from dscache_operator.crd import render

        sys.stdout.write(render())
        return 0
    try:
        ours = load(vars(args), os.environ)
    except SettingsError as err:
        print(f"dscache-operator: {err}", file=sys.stderr)
        return EXIT_USAGE
    problem = (
        missing_dependency()
        or credentials_problem(os.environ)
        or client_problem()
        or ports_problem(ours)
        or api_problem()
    )
    if problem is not None:
        print(f"dscache-operator: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return _run(ours)


if __name__ == "__main__":
    sys.exit(main())
