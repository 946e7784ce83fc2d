"""Shopify's Admin API schema (2026-10), as committed by generate_schema.py."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache

from graphql import GraphQLError, GraphQLSchema, build_client_schema, parse, validate

from sandbox.shopify.generate_schema import API_VERSION, OUTPUT

__all__ = ["API_VERSION", "admin_schema", "validation_errors"]


@lru_cache(maxsize=1)
def admin_schema() -> GraphQLSchema:
    introspection = json.loads(gzip.decompress(OUTPUT.read_bytes()))
    schema = build_client_schema(introspection)
    # graphql-core's schema check rejects Shopify's schema over a rule about deprecated
    # interface fields, although documents validate fine against it; skip that check.
    schema._validation_errors = []
    return schema


def validation_errors(document: str) -> list[GraphQLError]:
    """What Shopify would answer in `errors` for this document before running it."""
    try:
        ast = parse(document)
    except GraphQLError as exc:
        return [exc]
    return list(validate(admin_schema(), ast))
