"""The one base class of dscache's errors, and the two kinds a caller tells apart.

A `DscacheError`'s message is safe to show as it is: it names the field, file, member or version at
fault and never contains a credential (remote URLs are shown without userinfo or query). Each layer
raises its own subclass (`SpecError`, `RemoteError`, `InstallError`, ...); the command line maps the
kinds to exit codes in one place (`dscache.cli.exits`). Standard library only: `prepare` imports it.
"""

from __future__ import annotations


class DscacheError(Exception):
    """A failure whose message is safe to show (exit code 1 on the command line)."""


class InvalidInputError(DscacheError, ValueError):
    """Bad input: a spec field, a name, an argument or a file to publish (exit code 2)."""


class WaitTimeoutError(DscacheError):
    """Waited the allowed time for something another process does, e.g. a publication (exit code 3)."""
