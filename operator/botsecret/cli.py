"""The ``botsecret`` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from . import __version__
from .cli_check import add_check, add_render
from .cli_status import add_rotate, add_status, add_sync

if TYPE_CHECKING:
    from .runtime import OperatorConfig

RUN_ENVIRONMENT = """\
environment:
  BOTSECRET_NAMESPACE, POD_NAMESPACE
                        the operator's own namespace, where it keeps its HMAC key Secret, when
                        --operator-namespace is not given (BOTSECRET_NAMESPACE first; default
                        botsecret-system); it must exist
  BOTSECRET_AMBIENT_NAMESPACES
                        comma-separated, as --allow-ambient-credentials
  BOTSECRET_METRICS_PORT
                        as --metrics-port
  BOTSECRET_PROVIDER_TIMEOUT
                        seconds per provider call (default 10)
  BOTSECRET_SYNC_THREADS
                        threads for sync cycles and store checks (default 64), so that BotSecrets
                        stuck on a slow provider cannot stall the others
  BOTSECRET_PROVIDER_CONCURRENCY, BOTSECRET_PROVIDER_RATE
                        as --provider-concurrency, --provider-rate
  BOTSECRET_LEADER_ELECTION
                        "false": as --no-leader-election
  BOTSECRET_LEASE_NAME, BOTSECRET_LEASE_DURATION
                        as --lease-name, --lease-duration
  POD_NAME              this replica's name in the Lease (default: the host name), with a random suffix
"""


def _fail(message: str) -> int:
    print(f"botsecret: {message}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    import kopf
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from prometheus_client import start_http_server

    from . import handlers  # noqa: F401 - registers the handlers
    from .leader import LeaseNamespaceMissing
    from .metrics import LEADER
    from .runtime import OperatorConfig, OperatorNamespaceMissing

    # The runtime reads its settings from the environment, so flags and env vars agree.
    if args.allow_ambient_credentials:
        os.environ["BOTSECRET_AMBIENT_NAMESPACES"] = ",".join(args.allow_ambient_credentials)
    if args.operator_namespace:
        os.environ["BOTSECRET_NAMESPACE"] = args.operator_namespace
    if args.provider_concurrency is not None:
        os.environ["BOTSECRET_PROVIDER_CONCURRENCY"] = str(args.provider_concurrency)
    if args.provider_rate is not None:
        os.environ["BOTSECRET_PROVIDER_RATE"] = str(args.provider_rate)
    settings = OperatorConfig.from_environment()
    kopf.configure(verbose=args.verbose,
                   log_format=kopf.LogFormat.JSON if log_format(args) == "json" else kopf.LogFormat.FULL)
    quiet_chatty_libraries()
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address)
    try:
        # A standby starts nothing of kopf and writes nothing (not even the HMAC key) until it leads.
        elector = _lead(args, settings.namespace) if args.leader_election else None
    except LeaseNamespaceMissing as e:
        return _fail(str(OperatorNamespaceMissing(e.namespace)))
    except ConfigException:
        return _fail("no Kubernetes credentials: neither in-cluster nor a kubeconfig ($KUBECONFIG)")
    except ApiException as e:
        return _fail(f"reading the operator's namespace {settings.namespace!r} failed with HTTP {e.status} {e.reason}")
    if elector is None:
        LEADER.set(1)
        return _reconcile(args, settings)
    # Until kopf handles SIGTERM itself, a stop must still release the Lease (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    elector.keep(on_lost=_lost_leadership)
    try:
        return _reconcile(args, settings)
    finally:
        elector.release()


def _reconcile(args: argparse.Namespace, settings: OperatorConfig) -> int:
    import kopf
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException

    from .runtime import OperatorNamespaceMissing, Runtime

    # Before kopf runs: what makes the operator unable to start is said in one line, not a traceback
    # repeated by kopf's retries of a startup handler.
    try:
        runtime = Runtime.start(settings)
    except OperatorNamespaceMissing as e:
        return _fail(str(e))
    except ConfigException:
        return _fail("no Kubernetes credentials: neither in-cluster nor a kubeconfig ($KUBECONFIG)")
    except ApiException as e:
        return _fail(f"reading the HMAC key Secret in namespace {settings.namespace!r} failed with "
                     f"HTTP {e.status} {e.reason}")
    namespaces = args.namespace or []
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(runtime=runtime),
    )
    return 0


def log_format(args: argparse.Namespace) -> str:
    """``text`` or ``json``; ``--json-logs`` is the older spelling of ``--log-format json``."""
    return "json" if args.json_logs else str(args.log_format)


def _lead(args: argparse.Namespace, namespace: str) -> Any:
    """Block until this replica holds the Lease, answering liveness probes meanwhile."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from .leader import Elector, LeaseConfig, LeaseNamespaceMissing
    from .runtime import api_client

    api = api_client()
    # A Lease in a missing namespace answers 403 (the Role is granted in the namespace), not 404.
    try:
        client.CoreV1Api(api).read_namespace(namespace)
    except ApiException as e:
        if e.status == 404:
            raise LeaseNamespaceMissing(namespace) from None
        raise
    from .standby import serving_liveness

    elector = Elector(client.CoordinationV1Api(api),
                      LeaseConfig(namespace=namespace, name=args.lease_name, duration=args.lease_duration))
    with serving_liveness(args.liveness):
        elector.acquire()
    return elector


def _lost_leadership() -> None:
    import logging

    logging.getLogger("botsecret.leader").error(
        "leader election: could not renew the Lease in time; exiting at once so that only the new "
        "leader reconciles (the Pod restarts and waits as a standby)")
    logging.shutdown()
    # Not a graceful kopf stop: a cycle still running could write after another replica leads.
    os._exit(1)


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off")


def _uninstall(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException

    from .runtime import api_client
    from .uninstall import botsecrets, plan, uninstall

    try:
        api = api_client()
    except ConfigException:
        return _fail("no Kubernetes credentials: neither in-cluster nor a kubeconfig ($KUBECONFIG)")
    try:
        if not args.yes:
            for body in botsecrets(client.CustomObjectsApi(api), args.namespace or []):
                print(f"{body['metadata']['namespace']}/{body['metadata']['name']}: would {plan(body)}")
            print("nothing changed; run again with --yes to delete these BotSecrets")
            return 2
        outcomes = uninstall(api, args.namespace or [])
    except ApiException as e:
        return _fail(f"listing BotSecrets failed with HTTP {e.status} {e.reason}")
    for outcome in outcomes:
        print(outcome)
    print(f"{sum(o.ok for o in outcomes)} of {len(outcomes)} BotSecrets deleted; the CRD can go now"
          if all(o.ok for o in outcomes) else "some BotSecrets are left; run again")
    return 0 if all(o.ok for o in outcomes) else 1


# At DEBUG these log request and response bodies: secret values, STS credentials, tokens.
CHATTY_LOGGERS = ("botocore", "boto3", "urllib3", "hvac", "kubernetes", "google", "grpc", "s3transfer")


def quiet_chatty_libraries() -> None:
    """Keep SDK loggers at WARNING whatever the operator's own verbosity (``-v`` sets DEBUG)."""
    import logging

    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="botsecret", description="BotSecret operator")
    parser.add_argument("--version", action="version", version=f"botsecret {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator", epilog=RUN_ENVIRONMENT,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("-n", "--namespace", action="append",
                     help="watch only this namespace (repeatable); default: all namespaces")
    run.add_argument("--operator-namespace", metavar="NAMESPACE", default=None,
                     help="the operator's own namespace, for its HMAC key Secret; it must exist "
                          "(default: $BOTSECRET_NAMESPACE, else $POD_NAMESPACE, else botsecret-system)")
    run.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="log lines as text (default) or one JSON object per line")
    run.add_argument("--json-logs", action="store_true", help="the same as --log-format json")
    run.add_argument("--metrics-port", type=int, default=int(os.environ.get("BOTSECRET_METRICS_PORT", "0")),
                     help="serve Prometheus metrics on this port (0: off)")
    run.add_argument("--metrics-address", default="0.0.0.0", help="address for the metrics server")
    run.add_argument("--allow-ambient-credentials", action="append", metavar="NAMESPACE",
                     help="let BotSecrets of this namespace use the operator's own AWS/GCP identity "
                          "(repeatable; '*' for all). Default: no namespace may")
    run.add_argument("--provider-concurrency", type=int, default=None, metavar="N",
                     help="at most N calls at once to one provider endpoint (default 16)")
    run.add_argument("--provider-rate", type=float, default=None, metavar="PER_SECOND",
                     help="calls per second to one provider endpoint on average, bursts of twice that; "
                          "0 for no limit (default 50); a provider's Retry-After pauses the endpoint")
    run.add_argument("--leader-election", action=argparse.BooleanOptionalAction,
                     default=_env_flag("BOTSECRET_LEADER_ELECTION", True),
                     help="reconcile only while holding a coordination.k8s.io Lease in the operator's "
                          "namespace, so that several replicas can run (default: on; off only for a "
                          "single process, e.g. in development)")
    run.add_argument("--lease-name", default=os.environ.get("BOTSECRET_LEASE_NAME", "botsecret-operator"),
                     help="the Lease's name (default: botsecret-operator)")
    run.add_argument("--lease-duration", type=float, default=float(os.environ.get("BOTSECRET_LEASE_DURATION", "15")),
                     help="seconds a standby waits after the leader's last renewal before it takes over "
                          "(default: 15; the leader gives up after two thirds of it)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    remove = commands.add_parser(
        "uninstall", help="delete every BotSecret as the operator would, so that the CRD can be deleted",
        description="Delete every BotSecret (or those of -n), carrying out each one's deletionPolicy "
                    "(Owner/Orphan + Delete: delete the Secret; Owner + Retain: drop the ownerReference "
                    "so the garbage collector keeps it; Merge + Delete: remove its keys) and removing "
                    "its finalizer, without the operator. Without --yes it only lists what it would do.")
    remove.add_argument("-n", "--namespace", action="append",
                        help="only this namespace (repeatable); default: all namespaces")
    remove.add_argument("--yes", action="store_true", help="do it (default: only list what would be done)")
    remove.set_defaults(func=_uninstall)
    add_check(commands)
    add_render(commands)
    add_status(commands)
    add_sync(commands)
    add_rotate(commands)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
