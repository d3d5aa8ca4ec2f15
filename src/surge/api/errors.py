"""Error vocabulary shared by every layer.

Library code raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations

import enum


class SurgeError(Exception):
    """Base class: ``str(exc)`` is one line a user can act on."""


class UsageError(SurgeError):
    """Bad input a user can fix: flags, options, scenario files, expressions."""


class RunError(SurgeError):
    """The run could not be carried out (e.g. the generator could not start)."""


class ErrorKind(enum.IntEnum):
    """Typed request outcomes. ``OK`` is success; every other kind counts as an error.

    The integer values are stored in result buffers; never renumber them.
    """

    OK = 0
    DNS = 1
    REFUSED = 2
    CONNECT_TIMEOUT = 3
    TIMEOUT = 4
    RESET = 5
    PROTOCOL = 6
    TLS = 7
    HTTP_4XX = 8
    HTTP_5XX = 9
    CONNECT = 10  # other connect failures (unreachable network, ...)
    CANCELLED = 11  # in flight when the run was stopped

    @property
    def label(self) -> str:
        return self.name.lower()


ERROR_LABELS = {k.value: k.label for k in ErrorKind}
