"""The exceptions mlops raises: one base class, one subclass per error category.

Each category also subclasses the builtin exception a Python caller would catch for it, so
``except LookupError`` catches a missing run, ``except ValueError`` a bad argument, and
``except mlops.MlopsError`` everything the SDK raises. The message is the Rust error's.

Wrong Python *types* (a list where a str belongs) are plain ``TypeError``\\ s naming the
argument.
"""

from __future__ import annotations

__all__ = [
    "MlopsError",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "InvalidArgument",
    "PolicyDenied",
    "NotSupported",
    "PermissionDenied",
    "Unavailable",
    "TimedOut",
    "Corrupt",
    "BackendError",
]


class MlopsError(Exception):
    """Every error the SDK raises. ``kind`` names the category (as the Rust ``ErrorKind``)."""

    kind: str = "backend"


class NotFound(MlopsError, LookupError):
    """An experiment, run, model, version, alias, dataset or artifact that does not exist."""

    kind = "not_found"


class AlreadyExists(MlopsError, ValueError):
    """A name that is taken (an experiment, a registered model)."""

    kind = "already_exists"


class Conflict(MlopsError, RuntimeError):
    """A concurrent change won (a compare-and-swap lost): read again and retry."""

    kind = "conflict"


class InvalidArgument(MlopsError, ValueError):
    """A value that is not valid: a malformed name, a param rewritten, an unknown column."""

    kind = "invalid_argument"


class PolicyDenied(MlopsError, PermissionError):
    """A policy engine denied the action; the message names the rules."""

    kind = "policy_denied"


class NotSupported(MlopsError, NotImplementedError):
    """An operation this backend or model cannot do."""

    kind = "not_supported"


class PermissionDenied(MlopsError, PermissionError):
    """The storage or a peer refused access."""

    kind = "permission_denied"


class Unavailable(MlopsError, ConnectionError):
    """A peer or storage that could not be reached; retrying may succeed."""

    kind = "unavailable"


class TimedOut(Unavailable, TimeoutError):
    """An operation that ran out of time."""

    kind = "unavailable"


class Corrupt(MlopsError, RuntimeError):
    """Stored data that fails its checks (a digest mismatch, an unreadable manifest)."""

    kind = "corrupt"


class BackendError(MlopsError, OSError):
    """A failure of the storage or a library underneath (I/O, Parquet, Arrow)."""

    kind = "backend"
