"""Errors a user can fix: the entry points print their message, not a traceback."""

import sys
from typing import Callable


class UserError(Exception):
    """Bad input or configuration; the message names the problem and the fix."""


class DataError(UserError):
    """The images could not be found, read or selected as asked."""


class ConfigError(UserError):
    """A configuration value is out of range or inconsistent with another."""


def cli_status(action: Callable[[], object]) -> int:
    """Run a command; a ``UserError`` becomes its message on stderr and exit status 2."""
    try:
        action()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
