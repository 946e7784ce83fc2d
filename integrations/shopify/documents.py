"""Every GraphQL document the client sends. tests/test_shopify_documents.py validates
each against Shopify's official 2026-10 schema, so a typo fails the suite, not a merchant."""

from __future__ import annotations

API_VERSION = "2026-10"

_MONEY = "shopMoney { amount currencyCode }"

# Most orders hold a few lines: the first page is small (each line costs 4 points, and
# `first: 50` made a read cost 213), and the rest is read only when there is more.
FIRST_LINE_ITEMS = 5

_LINE_ITEM_FIELDS = f"""
fragment LineItemFields on LineItem {{
  id title sku quantity currentQuantity refundableQuantity unfulfilledQuantity
  variant {{ id }}
  originalUnitPriceSet {{ {_MONEY} }}
}}
"""

# What the checks before an action read: the order's status and what it can still refund.
ORDER_STATE_FIELDS = f"""
fragment OrderState on Order {{
  id
  name
  email
  createdAt
  cancelledAt
  displayFinancialStatus
  displayFulfillmentStatus
  customer {{ id defaultEmailAddress {{ emailAddress }} }}
  currentTotalPriceSet {{ {_MONEY} }}
  totalRefundedSet {{ {_MONEY} }}
  refundable: suggestedRefund(suggestFullRefund: true) {{ maximumRefundableSet {{ {_MONEY} }} }}
}}
"""

ORDER_FIELDS = (
    f"""
fragment OrderFields on Order {{
  ...OrderState
  shippingAddress {{
    address1 address2 city company countryCodeV2 firstName lastName phone provinceCode zip
  }}
  lineItems(first: {FIRST_LINE_ITEMS}) {{
    nodes {{ ...LineItemFields }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
    + ORDER_STATE_FIELDS
    + _LINE_ITEM_FIELDS
)

ORDER = (
    """
query Order($id: ID!) {
  order(id: $id) { ...OrderFields }
}
"""
    + ORDER_FIELDS
)

ORDER_STATE = (
    """
query OrderStateOnly($id: ID!) {
  order(id: $id) { ...OrderState }
}
"""
    + ORDER_STATE_FIELDS
)

ORDER_LINE_ITEMS = (
    """
query OrderLineItems($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 25, after: $after) {
      nodes { ...LineItemFields }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
    + _LINE_ITEM_FIELDS
)

# Searches list orders without their line items: a page of full orders would cost
# more than Shopify's single-query limit (1000 points). ORDER fetches one in full.
ORDER_SUMMARY_FIELDS = f"""
fragment OrderSummary on Order {{
  id
  name
  email
  createdAt
  cancelledAt
  displayFinancialStatus
  displayFulfillmentStatus
  customer {{ id defaultEmailAddress {{ emailAddress }} }}
  currentTotalPriceSet {{ {_MONEY} }}
  totalRefundedSet {{ {_MONEY} }}
}}
"""

ORDERS_SEARCH = (
    """
query Orders($query: String!, $first: Int!, $after: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT, reverse: true) {
    nodes { ...OrderSummary }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + ORDER_SUMMARY_FIELDS
)

SUGGESTED_REFUND = f"""
query SuggestedRefund($id: ID!, $lines: [RefundLineItemInput!], $full: Boolean) {{
  order(id: $id) {{
    suggestedRefund(refundLineItems: $lines, suggestFullRefund: $full, refundShipping: $full) {{
      amountSet {{ {_MONEY} }}
      maximumRefundableSet {{ {_MONEY} }}
      suggestedTransactions {{
        amountSet {{ {_MONEY} }}
        gateway
        kind
        parentTransaction {{ id }}
      }}
    }}
  }}
}}
"""

# The key makes a retried refund return the first result instead of refunding twice.
REFUND_CREATE = f"""
mutation RefundCreate($input: RefundInput!, $key: String!) {{
  refundCreate(input: $input) @idempotent(key: $key) {{
    refund {{ id totalRefundedSet {{ {_MONEY} }} }}
    userErrors {{ field message }}
  }}
}}
"""

# Under the same key a retry gets the first attempt's job back instead of a refusal to
# cancel an order that is being cancelled.
ORDER_CANCEL = """
mutation OrderCancel($id: ID!, $reason: OrderCancelReason!, $note: String, $key: String!) {
  orderCancel(
    orderId: $id
    reason: $reason
    restock: true
    notifyCustomer: true
    staffNote: $note
    refundMethod: { originalPaymentMethodsRefund: true }
  ) @idempotent(key: $key) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

JOB = """
query Job($id: ID!) {
  job(id: $id) { id done }
}
"""

ORDER_UPDATE_ADDRESS = """
mutation OrderUpdate($input: OrderInput!) {
  orderUpdate(input: $input) {
    order { id }
    userErrors { field message }
  }
}
"""

ORDER_EDIT_BEGIN = """
mutation OrderEditBegin($id: ID!) {
  orderEditBegin(id: $id) {
    calculatedOrder { id lineItems(first: 50) { nodes { id quantity variant { id } } } }
    userErrors { field message }
  }
}
"""

ORDER_EDIT_SET_QUANTITY = """
mutation OrderEditSetQuantity($id: ID!, $lineItemId: ID!, $quantity: Int!) {
  orderEditSetQuantity(id: $id, lineItemId: $lineItemId, quantity: $quantity, restock: true) {
    calculatedOrder { id }
    userErrors { field message }
  }
}
"""

ORDER_EDIT_ADD_VARIANT = """
mutation OrderEditAddVariant($id: ID!, $variantId: ID!, $quantity: Int!) {
  orderEditAddVariant(id: $id, variantId: $variantId, quantity: $quantity) {
    calculatedOrder { id }
    userErrors { field message }
  }
}
"""

ORDER_EDIT_COMMIT = """
mutation OrderEditCommit($id: ID!, $note: String) {
  orderEditCommit(id: $id, notifyCustomer: true, staffNote: $note) {
    order { id }
    userErrors { field message }
  }
}
"""

# What an exchange needs: the fulfilment line to send back, and the order's returns, where
# an earlier attempt's exchange would show.
FULFILLMENT_LINES = """
query FulfillmentLines($id: ID!) {
  order(id: $id) {
    fulfillments(first: 5) {
      fulfillmentLineItems(first: 20) { nodes { id quantity lineItem { id } } }
    }
    returns(first: 5) {
      nodes {
        id
        status
        returnLineItems(first: 5) {
          nodes { ... on ReturnLineItem { fulfillmentLineItem { id } } }
        }
        exchangeLineItems(first: 5) { nodes { variantId } }
      }
    }
  }
}
"""

RETURN_CREATE = """
mutation ReturnCreate($input: ReturnInput!, $key: String!) {
  returnCreate(returnInput: $input) @idempotent(key: $key) {
    return { id }
    userErrors { field message }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: { uri: $uri, format: JSON }) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""

# `email` is the owner's address (Shopify writes to the owner there); `contactEmail` is the
# address customers see, used only when the owner's is missing.
SHOP_EMAIL = """
query ShopEmail {
  shop { email contactEmail }
}
"""

ALL = {
    "ORDER": ORDER,
    "ORDER_STATE": ORDER_STATE,
    "ORDER_LINE_ITEMS": ORDER_LINE_ITEMS,
    "ORDERS_SEARCH": ORDERS_SEARCH,
    "SUGGESTED_REFUND": SUGGESTED_REFUND,
    "REFUND_CREATE": REFUND_CREATE,
    "ORDER_CANCEL": ORDER_CANCEL,
    "JOB": JOB,
    "ORDER_UPDATE_ADDRESS": ORDER_UPDATE_ADDRESS,
    "ORDER_EDIT_BEGIN": ORDER_EDIT_BEGIN,
    "ORDER_EDIT_SET_QUANTITY": ORDER_EDIT_SET_QUANTITY,
    "ORDER_EDIT_ADD_VARIANT": ORDER_EDIT_ADD_VARIANT,
    "ORDER_EDIT_COMMIT": ORDER_EDIT_COMMIT,
    "FULFILLMENT_LINES": FULFILLMENT_LINES,
    "RETURN_CREATE": RETURN_CREATE,
    "WEBHOOK_SUBSCRIPTION_CREATE": WEBHOOK_SUBSCRIPTION_CREATE,
    "SHOP_EMAIL": SHOP_EMAIL,
}
