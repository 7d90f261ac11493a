"""Typed errors of monoculture, each with the exit status the command line gives it.

A leaf module (it imports nothing of the package), so that every layer (datasets, descriptors, audit,
reports, the command line) can raise and catch these without an upward import. Every error a user can fix
(a missing file, an unknown format or card, an invalid option) is a :class:`MonocultureError`: the command
line prints its message as one line and exits with its :attr:`~MonocultureError.exit_code`; anything else
is a bug and keeps its traceback.

Exit statuses: 2 for an error the user can fix (:class:`UsageError` and its subclasses), 3 when an input
yielded no record that could be audited (:class:`NothingAuditedError`).
"""
from __future__ import annotations

__all__ = [
    "MonocultureError", "UsageError", "DatasetOpenError", "UnknownFormatError", "InputError",
    "NothingAuditedError", "EXIT_USAGE", "EXIT_NOTHING_AUDITED",
]

#: Exit status of an error the user can fix (a wrong path, name or option value).
EXIT_USAGE = 2
#: Exit status when an input yielded no record that could be audited.
EXIT_NOTHING_AUDITED = 3


class MonocultureError(Exception):
    """Base of every error monoculture reports to a user as one line.

    Attributes
    ----------
    exit_code : int
        Exit status of the command line for this error (a class attribute; 2 unless a subclass says
        otherwise).
    """

    exit_code: int = EXIT_USAGE


class UsageError(MonocultureError):
    """An error the user can fix: a missing file, an unknown name, an invalid option value (exit status 2)."""

    exit_code = EXIT_USAGE


class DatasetOpenError(UsageError, OSError):
    """A path that does not exist, has no reader, or whose container cannot be opened at all."""


class UnknownFormatError(UsageError, ValueError):
    """No reader recognises a file, or a format name is not registered."""


class InputError(UsageError, ValueError):
    """A file its reader cannot read at all with the given options (one line: file, what is wrong, the fix)."""


class NothingAuditedError(MonocultureError):
    """An input yielded no record that could be audited, featurized or embedded (exit status 3)."""

    exit_code = EXIT_NOTHING_AUDITED
