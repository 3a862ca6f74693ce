"""The project's own error types: everything a user can cause comes out as one of these."""

from __future__ import annotations


class PrunescopeError(Exception):
    """Base class of every error prunescope raises on purpose."""


class SpecError(PrunescopeError, ValueError):
    """A spec or study field has a value outside what it allows.

    The message follows scikit-learn's parameter-validation template: which
    parameter, the allowed values, and the value received.
    """

    def __init__(self, param: str, allowed: str, received: object, *, owner: str = "spec"):
        self.param = param
        self.allowed = allowed
        self.received = received
        super().__init__(
            f"The '{param}' parameter of {owner} must be {allowed}. Got {shown(received)} instead."
        )


#: Longest value an error message repeats (a 10,000-seed list must not make a 59 KB line).
SHOWN_CHARS = 100


def shown(value: object) -> str:
    """``repr(value)`` on one line, cut to about 100 characters with its length said."""
    text = " ".join(repr(value).split())
    if len(text) <= SHOWN_CHARS:
        return text
    size = f"{len(value)} items, " if isinstance(value, list | tuple | dict | set) else ""
    return f"{text[:SHOWN_CHARS]}... ({size}{len(text)} characters)"


class DataError(PrunescopeError):
    """A dataset cannot be found or read."""


class CheckpointError(PrunescopeError):
    """A checkpoint is not what it claims to be (wrong keys, shapes, dtypes or format)."""


class StoreError(PrunescopeError):
    """The result store cannot be read or written."""


class TrainingDiverged(PrunescopeError):
    """Training produced a non-finite loss."""
