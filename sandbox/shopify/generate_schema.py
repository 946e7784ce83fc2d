"""Write the committed Admin API schema from Shopify's official introspection file.

    npm pack @shopify/dev-mcp@1.16.0          # the registry ships the official schema
    uv run python -m sandbox.shopify.generate_schema shopify-dev-mcp-1.16.0.tgz

Reads `package/dist/data/admin_2026-10.json.gz` from the tarball and keeps
only what validation and execution need: every type, field, argument, enum
value and directive, without descriptions and Shopify's documentation-only
keys. A document that Shopify's schema rejects is rejected by this one too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tarfile
from pathlib import Path
from typing import Any

API_VERSION = "2026-10"
MEMBER = f"package/dist/data/admin_{API_VERSION}.json.gz"
OUTPUT = Path(__file__).with_name(f"admin_{API_VERSION}.schema.json.gz")

# Keys of the standard introspection result (graphql-core's build_client_schema reads these).
_KEEP = {
    "__schema": {"queryType", "mutationType", "subscriptionType", "types", "directives"},
    "type": {
        "kind",
        "name",
        "fields",
        "inputFields",
        "interfaces",
        "enumValues",
        "possibleTypes",
        "specifiedByURL",
        "isOneOf",
    },
    "field": {"name", "args", "type", "isDeprecated", "deprecationReason"},
    "input": {"name", "type", "defaultValue", "isDeprecated", "deprecationReason"},
    "enum": {"name", "isDeprecated", "deprecationReason"},
    "directive": {"name", "locations", "args", "isRepeatable"},
}


def _pick(item: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in keys}


def _inputs(values: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    return None if values is None else [_pick(v, _KEEP["input"]) for v in values]


def strip(schema: dict[str, Any]) -> dict[str, Any]:
    types = []
    for item in schema["types"]:
        kept = _pick(item, _KEEP["type"])
        if item.get("fields") is not None:
            kept["fields"] = [
                {**_pick(f, _KEEP["field"]), "args": _inputs(f.get("args")) or []}
                for f in item["fields"]
            ]
        kept["inputFields"] = _inputs(item.get("inputFields"))
        if item.get("enumValues") is not None:
            kept["enumValues"] = [_pick(v, _KEEP["enum"]) for v in item["enumValues"]]
        types.append(kept)
    directives = [
        {**_pick(d, _KEEP["directive"]), "args": _inputs(d.get("args")) or []}
        for d in schema["directives"]
    ]
    return {**_pick(schema, _KEEP["__schema"]), "types": types, "directives": directives}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="shopify-dev-mcp-1.16.0.tgz from `npm pack`")
    arguments = parser.parse_args()
    with tarfile.open(arguments.tarball) as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise SystemExit(f"{MEMBER} is not in {arguments.tarball}")
        official = json.loads(gzip.decompress(member.read()))
    schema = strip(official["data"]["__schema"])
    data = json.dumps({"__schema": schema}, separators=(",", ":"), sort_keys=True).encode()
    # mtime=0: the same input always gives the same bytes, so a regenerated file diffs clean.
    OUTPUT.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"wrote {OUTPUT} ({len(schema['types'])} types, {OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
