"""Domain errors raised by the UWS service; ``wsgi`` maps each class to one HTTP status."""

from __future__ import annotations

__all__ = [
    "Forbidden",
    "PhaseConflict",
    "TooLarge",
    "UnknownJob",
    "UnknownResource",
    "UnknownService",
    "UsageError",
    "UWSError",
]


class UWSError(Exception):
    """Base of every error a client can cause; ``code`` is the HTTP status it maps to."""

    code = 400
    label = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(UWSError):
    """A malformed or out-of-range value (DALI ``UsageError``)."""

    code = 400
    label = "UsageError"


class UnknownJob(UWSError):
    """No such job (for this service)."""

    code = 404
    label = "NotFound"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class UnknownService(UWSError):
    code = 404
    label = "NotFound"

    def __init__(self, service: str) -> None:
        super().__init__(f"no service {service!r}")


class UnknownResource(UWSError):
    """An unknown result, parameter or sub-resource of an existing job."""

    code = 404
    label = "NotFound"


class PhaseConflict(UWSError):
    """A request that is illegal in the job's current phase (UWS 1.1: 403)."""

    code = 403
    label = "PhaseConflict"


class Forbidden(UWSError):
    """Not the caller's job."""

    code = 403
    label = "Forbidden"


class TooLarge(UWSError):
    """An upload or form body beyond the configured limit."""

    code = 413
    label = "TooLarge"
