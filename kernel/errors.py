"""The one error hierarchy. Raised anywhere; rendered once for HTTP (`api/errors.py`) and
mapped once to Temporal (`activities/errors.py`).

`code` is the machine-readable name a client sees; `retryable` says whether trying the
same thing again can help (only `Transient`, and a vendor failure marked so); `details`
are extra machine-readable fields of the answer (which field of a decision is wrong).
"""

from __future__ import annotations

from typing import ClassVar


class DeskpilotError(Exception):
    code: ClassVar[str] = "error"
    retryable: bool = False

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})
        if code is not None:
            self.code = code  # type: ignore[misc]


class Invalid(DeskpilotError):
    """The caller's input cannot be used as given."""

    code = "bad_request"


class Malformed(Invalid):
    """Well-formed as a request, but its content cannot be used: an email that is not one,
    playbook rules that do not validate."""

    code = "malformed"


class InvalidDecision(Malformed):
    """A decision that cannot be carried out as edited; `details` name the field and why.
    The action stays PENDING so the person can correct it."""

    code = "invalid_decision"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", details={"field": field, "reason": reason})


class TooLarge(Invalid):
    code = "too_large"


class Unauthorized(DeskpilotError):
    code = "unauthorized"


class Forbidden(DeskpilotError):
    """Known caller, refused request (a form without its CSRF token)."""

    code = "forbidden"


class NotFound(DeskpilotError):
    """Also the answer for another merchant's row: its existence is not revealed."""

    code = "not_found"


class Conflict(DeskpilotError):
    """The row is not in a state that allows this (a decision already taken)."""

    code = "conflict"


class LimitReached(DeskpilotError):
    """A limit is reached: the plan's for this billing period, or too many attempts.
    `retry_after` (seconds) says when trying again can pass, when that is known."""

    code = "limit_reached"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Refused(DeskpilotError):
    """We will not do it: the action no longer holds, or a connection forbids it."""

    code = "refused"


class NotEntitled(Refused):
    """The subscription does not cover this (a trial that ended, a cancelled plan)."""

    code = "not_entitled"


class PlanLimit(Refused):
    """Carrying this out would pass the plan's limit for the period. Unlike LimitReached
    (429, try later), it is a refusal of this decision now: 409."""

    code = "limit_reached"


class Transient(DeskpilotError):
    """Something we depend on is unavailable for now; the same request may pass later."""

    code = "unavailable"
    retryable = True


class IntegrationError(DeskpilotError):
    """A vendor (Shopify, Google, the mail relay, the LLM) refused or failed.

    Whether retrying can help depends on the answer (429 and 5xx yes, a refused
    token no), so the vendor client says so for each one.
    """

    code = "vendor_error"

    def __init__(self, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
