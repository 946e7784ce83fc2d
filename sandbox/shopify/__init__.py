"""A Shopify store that speaks the Admin GraphQL API, for the demo and the tests."""
