"""`python -m mobilenets <command>`: the package's command line."""

import argparse
import json
import sys

from mobilenets.errors import UserError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mobilenets", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="table of every registered model variant")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.add_argument("--name", action="append", help="only this model (repeatable)")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def models_command(args):
    from mobilenets import catalogue

    from mobilenets.models.registry import list_models

    unknown = sorted(set(args.name or []) - set(list_models()))
    if unknown:
        raise UserError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(list_models())}")
    table = list(catalogue.rows(args.name))
    print(json.dumps(table, indent=2) if args.json else catalogue.format_table(table))
    return 0


COMMANDS = {"models": models_command}
