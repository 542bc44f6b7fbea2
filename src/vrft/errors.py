"""Exceptions for problems in the user's input. The CLI prints them without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (config, data, arguments) that the user can fix."""


class ConfigError(UserError):
    """An invalid configuration; the message lists every problem found, with how to fix it."""


class DataError(UserError):
    """Invalid data; the message names where (file:line, field or annotation id) and how to fix it."""
