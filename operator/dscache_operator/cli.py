"""`dscache-operator`: run the operator (`run`) or print the CRD (`crd`).

A local run against any cluster (credentials from KUBECONFIG; installer Jobs still run in the cluster):

    kubectl apply -f crds/datasetcache.yaml -f crds/kopf-peering.yaml
    dscache-operator run --namespace ml --image ghcr.io/dscache/dscache:0.1.0

Flags default from DSCACHE_OPERATOR_<FLAG> variables (e.g. DSCACHE_OPERATOR_IMAGE).

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
import json
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
    run.add_argument(
        "--prepare-wait",
        type=float,
        default=float(env.get("prepare_wait", settings_mod.DEFAULT_PREPARE_WAIT)),
        help="seconds the injected init container waits for unpublished versions",
    )
    run.add_argument(
        "--prepare-resources",
        type=json.loads,
        default=json.loads(env.get("prepare_resources", json.dumps(settings_mod.DEFAULT_PREPARE_RESOURCES))),
        help="resources of the injected init container, as JSON ('{}' for none)",
    )
    hook = run.add_argument_group("admission webhook (off unless --webhook-cert or --webhook-dev)")
    hook.add_argument("--webhook-cert", default=env.get("webhook_cert"), help="serving certificate (PEM)")
    hook.add_argument("--webhook-key", default=env.get("webhook_key"), help="its private key (PEM)")
    hook.add_argument(
        "--webhook-port", type=int, default=int(env.get("webhook_port", settings_mod.WEBHOOK_PORT))
    )
    hook.add_argument(
        "--webhook-addr", default=env.get("webhook_addr", "0.0.0.0"), help="listen address (cert mode)"
    )
    hook.add_argument(
        "--webhook-dev",
        action="store_true",
        default=env.get("webhook_dev") == "1",
        help="generate a CA and register URL webhooks to this process (test bed, local runs)",
    )
    hook.add_argument(
        "--webhook-host",
        default=env.get("webhook_host", "127.0.0.1"),
        help="dev mode: the address the API server reaches this process at (listened on too)",
    )
    run.add_argument("--verbose", action="store_true")
    sub.add_parser("crd", help="print the DatasetCache CRD (crds/datasetcache.yaml)")
    return parser


def _run(args: argparse.Namespace) -> int:
    import kopf

    import dscache_operator.handlers  # registers the handlers
    from dscache_operator.settings import Settings, WebhookSettings

    if bool(args.webhook_cert) != bool(args.webhook_key):
        raise SystemExit("dscache-operator: --webhook-cert and --webhook-key go together")
    webhook = WebhookSettings(
        cert=args.webhook_cert or None,
        key=args.webhook_key or None,
        dev=args.webhook_dev,
        port=args.webhook_port,
        addr=args.webhook_addr,
        host=args.webhook_host,
    )
    if webhook.enabled:
        import dscache_operator.webhooks  # noqa: F401  (registers the admission handlers)
    ours = Settings(
        image=args.image,
        installer_api_url=args.installer_api_url or None,
        namespaces=tuple(args.namespace),
        peering_name=args.peering,
        standalone=args.standalone,
        liveness_url=args.liveness or None,
        metrics_port=args.metrics_port or None,
        prepare_wait=args.prepare_wait,
        prepare_resources=args.prepare_resources,
        webhook=webhook,
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
