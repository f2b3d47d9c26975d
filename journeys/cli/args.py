"""What the command line's values mean: recipients, profile fields, JSON options, counts.

A value that is malformed is a wrong command line: the command's usage and the problem,
with the option named, and exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from definitions.errors import ConfigurationError
from definitions.values import JSONValue, check_json, check_text, loads

__all__ = ["json_object", "positive", "profile_fields", "recipient", "recipients", "usage"]


def usage(args: argparse.Namespace, message: str) -> NoReturn:
    """A wrong command line: the command's usage and ``message``, exit 2."""
    parser: argparse.ArgumentParser = args.command_parser
    parser.error(message)


def json_object(args: argparse.Namespace, text: str | None, what: str) -> dict[str, JSONValue]:
    """Option ``what``'s JSON object (``--data``, ``--profile``), checked like the API's input."""
    if text is None:
        return {}
    try:
        value = loads(text)
    except ValueError as exc:
        usage(args, f"{what}: {exc}")
    if not isinstance(value, dict):
        usage(args, f"{what}: expected a JSON object, found {text[:40]!r}")
    problems = check_json(value, what)
    if problems:
        usage(args, "; ".join(problems))
    return value


def profile_fields(args: argparse.Namespace) -> dict[str, JSONValue]:
    """``--field NAME=TEXT`` and ``--field NAME:=JSON``: profile fields for every recipient."""
    fields: dict[str, JSONValue] = {}
    for item in args.field:
        name, json_value, text = item.partition(":=")
        if not json_value:
            name, equals, text = item.partition("=")
            if not equals:
                usage(args, f"--field: expected NAME=TEXT or NAME:=JSON, found {item[:40]!r}")
        name = name.strip()
        if not name or name == "id":
            what = "the recipient's id is --to" if name == "id" else "a field name"
            usage(args, f"--field {item[:40]!r}: expected {what} before '='")
        where = f"--field {name}"
        if json_value:
            try:
                value = loads(text)
            except ValueError as exc:
                usage(args, f"{where}: {exc}")
        else:
            value = text
        problems = check_json(value, where) if json_value else check_text(text, where)
        if problems:
            usage(args, "; ".join(problems))
        fields[name] = value
    return fields


def recipient(args: argparse.Namespace, text: str, where: str) -> str | dict[str, JSONValue]:
    """An id, or a JSON object with an ``id`` and profile fields."""
    if not text.startswith("{"):
        return text
    try:
        value = loads(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"{where}: expected a JSON object or an id, found {text[:40]!r} ({exc})"
        ) from None
    if not isinstance(value, dict):  # pragma: no cover - "{" starts an object or an error
        raise ConfigurationError(f"{where}: expected a JSON object or an id, found {text[:40]!r}")
    return value


def recipients(args: argparse.Namespace) -> list[str | dict[str, JSONValue]]:
    """``--to`` ids or JSON objects and the lines of ``--to-file``, with ``--field``s added.

    A recipient's own fields (from its JSON object) win over ``--field`` values.
    """
    fields = profile_fields(args)
    recipients: list[str | dict[str, JSONValue]] = [
        recipient(args, to, "--to") for to in args.to or []
    ]
    if args.to_file:
        path = Path(args.to_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"--to-file: cannot read {path}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"--to-file: {path}: expected UTF-8 text, found byte 0x{exc.object[exc.start]:02x}"
                f" at byte {exc.start}"
            ) from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if line:
                recipients.append(recipient(args, line, f"{path}:{number}"))
    if not recipients:
        usage(args, "expected recipients: --to ID … or --to-file FILE")
    if fields:
        recipients = [
            {**fields, **r} if isinstance(r, dict) else {"id": r, **fields} for r in recipients
        ]
    return recipients


def positive(text: str) -> int:
    """An option's whole number above zero (argparse makes the error an exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, found {text!r}")
    return value
