"""Domain errors raised by the UWS service; ``wsgi`` maps each class to one HTTP status."""

from __future__ import annotations

__all__ = [
    "Forbidden",
    "PhaseConflict",
    "TooLarge",
    "UnknownJob",
    "UnknownResource",
    "Unauthenticated",
    "UnknownService",
    "UsageError",
    "UWSError",
]


class UWSError(Exception):
    """Base of every error a client can cause; ``code`` is the HTTP status it maps to."""

    code = 400
    label = "Error"
    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers (e.g. the WWW-Authenticate challenge of a 401)."""

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


class Unauthenticated(UWSError):
    """No usable credentials where the server needs them (HTTP 401 with a challenge)."""

    code = 401
    label = "Unauthenticated"

    def __init__(self, message: str, challenge: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.headers = tuple(challenge)


class Forbidden(UWSError):
    """Not the caller's job, a service the caller has no role for, or a limit reached."""

    code = 403
    label = "Forbidden"


class TooLarge(UWSError):
    """An upload or form body beyond the configured limit."""

    code = 413
    label = "TooLarge"
