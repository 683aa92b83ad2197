"""`botsecret check` and `botsecret render`."""

from __future__ import annotations

import argparse
import sys

from .assemble import assemble
from .cli_input import InputError, Loaded, from_cluster, from_file
from .diagnose import check_rows, format_table
from .providers.base import ProviderError
from .render import FORMATS, RenderError, interpolated_keys, render
from .templating import TemplateFailed
from .templating import render as render_template

__all__ = ["add_check", "add_render"]

RENDER_WARNING = ("botsecret render: the output holds SECRET VALUES; write it to a file only you can read "
                  "and never paste it into tickets, chats or logs")


def _fail(message: str, code: int = 2) -> int:
    print(f"botsecret: {message}", file=sys.stderr)
    return code


def _load(args: argparse.Namespace) -> Loaded:
    if args.file:
        if args.name:
            raise InputError("give either -f FILE or a BotSecret NAME, not both")
        return from_file(args.file, args.namespace)
    if not args.name:
        raise InputError("give -f FILE or the NAME of a BotSecret in the cluster")
    return from_cluster(args.name, args.namespace or "default")


def _check(args: argparse.Namespace) -> int:
    try:
        loaded = _load(args)
    except InputError as e:
        return _fail(str(e))
    try:
        answers = loaded.answers()
        rows = check_rows(loaded.spec, loaded.resolved, answers, loaded.listings())
    finally:
        loaded.close()
    sys.stdout.write(format_table(rows))
    failed = sum(not r.ok for r in rows)
    print(f"{loaded.namespace}/{loaded.name}: {len(rows) - failed} of {len(rows)} references OK")
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    print(RENDER_WARNING, file=sys.stderr)
    try:
        loaded = _load(args)
    except InputError as e:
        return _fail(str(e))
    try:
        answers = loaded.answers()
        built = assemble(loaded.spec, answers, loaded.listings())
        listed_failure = any(isinstance(v, ProviderError) for v in loaded.listings().values())
        if built.failure is not None or built.missing_required or listed_failure:
            rows = [r for r in check_rows(loaded.spec, loaded.resolved, answers, loaded.listings()) if not r.ok]
            why = built.failure.message if built.failure is not None else built.explain(built.missing_required)
            sys.stderr.write(format_table(rows) if rows else why + "\n")
            return _fail("not rendered: not every required key resolved (see botsecret check)", 1)
        data = dict(built.data)
        if loaded.spec.target.template is not None:
            # As the operator writes the Secret (reconcile.py): the rendered keys, and with
            # mergePolicy Merge the fetched ones under them.
            data = render_template(loaded.spec.target.template, data)
        output = render(data, args.format, name=loaded.spec.target.name, namespace=loaded.namespace,
                        secret_type=loaded.spec.target.type)
    except (RenderError, TemplateFailed) as e:
        return _fail(str(e), 1)
    finally:
        loaded.close()
    if args.format == "env":
        for key in interpolated_keys(data):
            print(f"botsecret render: the value of {key} holds '${{': read the file with python-dotenv's "
                  "interpolate=False, or it is expanded as a variable", file=sys.stderr)
    sys.stdout.write(output)
    return 0


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="a BotSecret in the cluster (instead of -f)")
    parser.add_argument("-f", "--file", metavar="FILE",
                        help="a YAML file with one BotSecret and optionally its stores and credentials "
                             "Secrets ('-' for stdin); what it lacks is read from the cluster")
    parser.add_argument("-n", "--namespace", help="the BotSecret's namespace (default: the file's, else default)")


def add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check", help="resolve every reference of a BotSecret and say which fail, and why; shows no value",
        description="Resolve every reference of a BotSecret with the credentials its stores name (or, where a "
                    "store names none, your own cloud identity), as the operator would, and print one row per "
                    "key: source, remote name, remote version and OK or the error class (NotFound, "
                    "AccessDenied, WrongRegion, TLS, Throttled, Unavailable, StoreNotFound, StoreNotAllowed, "
                    "StoreInvalid, NotJSON) with a hint. Never prints a value. Exit status: 0 when every "
                    "reference resolves, 1 when any fails, 2 when the input cannot be read.")
    _source_arguments(check)
    check.set_defaults(func=_check)


def add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rendered = commands.add_parser(
        "render", help="print the resolved values as .env, a Secret manifest or JSON (SHOWS VALUES)",
        description="Resolve a BotSecret as `check` does and print its data: --format env (python-dotenv "
                    "compatible, double-quoted, for local development), secret (a Secret manifest, data in "
                    "base64, any bytes), json (UTF-8 strings). The only command that shows values; it says "
                    "so on stderr. Exit status: 0 rendered, 1 a key did not resolve or the format cannot "
                    "carry a value, 2 bad input.")
    _source_arguments(rendered)
    rendered.add_argument("--format", choices=FORMATS, default="env", help="output format (default: env)")
    rendered.set_defaults(func=_render)
