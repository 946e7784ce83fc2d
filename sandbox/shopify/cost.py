"""Query cost as Shopify calculates it, roughly, and the leaky bucket that spends it.

Requested cost, before running: scalars and enums are free, an object is 1, a
connection is 2 plus `first` (or `last`) times the cost of one node, a list field with
`first` multiplies likewise, and a mutation field is 10. The actual cost, after running,
counts the objects really returned, so a search that finds one order costs less than
the 50 it asked for; the difference goes back into the bucket.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLNamedType, GraphQLUnionType

MUTATION_COST = 10
CONNECTION_COST = 2
SINGLE_QUERY_LIMIT = 1000  # Shopify refuses a single query that could cost more


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def _size(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = value_from_ast_untyped(argument.value, self.variables)
                if isinstance(value, int):
                    return max(value, 0)
        return 1

    def selection(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(parent, node)
            elif isinstance(node, InlineFragmentNode):
                target = (
                    self.schema.get_type(node.type_condition.name.value)
                    if node.type_condition
                    else parent
                )
                total += self.selection(target or parent, node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    total += self.selection(target or parent, fragment.selection_set)
        return total

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:  # __typename and other meta fields
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        if isinstance(named, GraphQLUnionType):
            # A union costs what its dearest member selection costs.
            return 1 + max(
                (self.selection(member, node.selection_set) for member in named.types), default=0
            )
        children = self.selection(named, node.selection_set)
        if named.name.endswith("Edge"):
            return children  # an edge is bookkeeping around its node, which is what counts
        if named.name.endswith("Connection"):
            return CONNECTION_COST + self._size(node) * children
        if any(a.name.value in ("first", "last") for a in node.arguments or ()):
            return self._size(node) * (1 + children)
        return 1 + children


def requested_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    costing = _Costing(schema, fragments, variables)
    if operation.operation == OperationType.MUTATION:
        root = schema.mutation_type
        assert root is not None
        return sum(
            MUTATION_COST
            + costing.selection(get_named_type(root.fields[n.name.value].type), n.selection_set)
            for n in operation.selection_set.selections
            if isinstance(n, FieldNode) and n.name.value in root.fields
        )
    root = schema.query_type
    assert root is not None
    return costing.selection(root, operation.selection_set)


def actual_cost(data: Any, *, mutation_fields: int = 0) -> int:
    """Objects really returned (connections and their nodes included), plus the mutations."""

    def objects(value: Any) -> int:
        if isinstance(value, dict):
            return 1 + sum(objects(v) for v in value.values())
        if isinstance(value, list):
            return sum(objects(v) for v in value)
        return 0

    # The response's own top-level object is not a field Shopify charges for.
    counted = objects(data) - 1 if isinstance(data, dict) else 0
    return max(counted, 0) + MUTATION_COST * mutation_fields
