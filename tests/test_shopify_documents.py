"""Every GraphQL document the client can send validates against the official 2026-10 schema."""

from __future__ import annotations

import pytest

from integrations.shopify import documents
from sandbox.shopify.schema import API_VERSION, validation_errors


def test_client_and_schema_pin_the_same_version() -> None:
    assert documents.API_VERSION == API_VERSION == "2026-10"


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_document_is_valid(name: str) -> None:
    assert [e.message for e in validation_errors(documents.ALL[name])] == []


def test_every_document_is_listed() -> None:
    defined = {
        n
        for n in dir(documents)
        if n.isupper()
        and not n.startswith("_")
        and n
        not in {
            "ALL",
            "API_VERSION",
            "FIRST_LINE_ITEMS",
            "ORDER_FIELDS",
            "ORDER_STATE_FIELDS",
            "ORDER_SUMMARY_FIELDS",
        }
    }
    assert defined == set(documents.ALL)
