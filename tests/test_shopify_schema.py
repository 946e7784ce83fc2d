"""The committed Admin API schema validates documents as Shopify would."""

from __future__ import annotations

from sandbox.shopify.schema import admin_schema, validation_errors


def test_schema_has_the_types_the_product_uses() -> None:
    schema = admin_schema()
    for name in ("Order", "Refund", "SuggestedRefund", "OrderCancelUserError", "CalculatedOrder"):
        assert schema.get_type(name) is not None, name
    mutations = schema.mutation_type.fields if schema.mutation_type else {}
    for name in ("refundCreate", "orderCancel", "orderUpdate", "orderEditBegin", "returnCreate"):
        assert name in mutations, name
    assert schema.get_directive("idempotent") is not None


def test_a_valid_document_passes_and_an_invalid_one_is_refused() -> None:
    good = """
      query Order($id: ID!) {
        order(id: $id) { id name cancelledAt displayFinancialStatus
          currentTotalPriceSet { shopMoney { amount currencyCode } } }
      }"""
    assert validation_errors(good) == []
    unknown_field = 'query { order(id: "gid://shopify/Order/1") { id refundableAmount } }'
    assert any("refundableAmount" in e.message for e in validation_errors(unknown_field))
    assert validation_errors("query {") != []
