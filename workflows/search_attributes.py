"""Search attributes that let an operator find a message's workflow in the Web UI.

No customer PII: ids, the order's name, the stage and the action type only.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

OWNER = SearchAttributeKey.for_keyword("DeskpilotOwner")
MESSAGE = SearchAttributeKey.for_keyword("DeskpilotMessage")
ORDER_NAME = SearchAttributeKey.for_keyword("DeskpilotOrder")
STATUS = SearchAttributeKey.for_keyword("DeskpilotStatus")
ACTION_TYPE = SearchAttributeKey.for_keyword("DeskpilotActionType")

ALL = (OWNER, MESSAGE, ORDER_NAME, STATUS, ACTION_TYPE)


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register them at start."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
