"""Errors a user can fix: the entry points print their message, not a traceback."""


class UserError(Exception):
    """Bad input or configuration; the message names the problem and the fix."""


class DataError(UserError):
    """The images could not be found, read or selected as asked."""


class ConfigError(UserError):
    """A configuration value is out of range or inconsistent with another."""
