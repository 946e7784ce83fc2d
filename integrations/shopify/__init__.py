"""The Shopify Admin GraphQL API client (version pinned in documents.API_VERSION)."""
