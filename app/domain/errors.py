"""Domain errors; the web layer maps each to an HTTP status with its message shown to the user."""


class DomainError(Exception):
    """Base: the message is safe to show to the person who caused it."""

    status_code = 400


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""

    status_code = 404


class Forbidden(DomainError):
    """The caller may not do this."""

    status_code = 403


class Conflict(DomainError):
    """The request clashes with the current state (a frozen design, a used invite)."""

    status_code = 409


class Invalid(DomainError):
    """The input is malformed or breaks a rule."""

    status_code = 422


class TooMany(DomainError):
    """Rate limit reached."""

    status_code = 429
