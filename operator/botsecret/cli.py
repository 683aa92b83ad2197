"""The ``botsecret`` command."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__


def _run(args: argparse.Namespace) -> int:
    import os

    import kopf
    from prometheus_client import start_http_server

    from . import handlers  # noqa: F401 - registers the handlers

    if args.allow_ambient_credentials:
        # The runtime reads its settings from the environment, so flags and env vars agree.
        os.environ["BOTSECRET_AMBIENT_NAMESPACES"] = ",".join(args.allow_ambient_credentials)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address)

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.json_logs else kopf.LogFormat.FULL)
    quiet_chatty_libraries()
    namespaces = args.namespace or []
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        liveness_endpoint=args.liveness,
    )
    return 0


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
    run = commands.add_parser("run", help="run the operator")
    run.add_argument("-n", "--namespace", action="append",
                     help="watch only this namespace (repeatable); default: all namespaces")
    run.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--json-logs", action="store_true", help="log in JSON")
    run.add_argument("--metrics-port", type=int, default=int(os.environ.get("BOTSECRET_METRICS_PORT", "0")),
                     help="serve Prometheus metrics on this port (0: off)")
    run.add_argument("--metrics-address", default="0.0.0.0", help="address for the metrics server")
    run.add_argument("--allow-ambient-credentials", action="append", metavar="NAMESPACE",
                     help="let BotSecrets of this namespace use the operator's own AWS/GCP identity "
                          "(repeatable; '*' for all). Default: no namespace may")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
