"""A permissive email address type.

pydantic's EmailStr refuses special-use domains (.test, .local, .localhost),
which are exactly what a local demo and a test suite use; deliverability is
the mail server's business, so we only check the shape.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_ADDRESS = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def check_address(value: str) -> str:
    value = value.strip()
    if len(value) > 320 or not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


EmailAddress = Annotated[str, AfterValidator(check_address)]
