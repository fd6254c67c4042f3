"""How much one GraphQL request may ask of the emulator: a validation rule.

The schema has cycles (a delivery's `webhook` has `deliveries`, whose nodes have a
`webhook` …), so a query of a hundred bytes can ask for a million objects; graphql-core
would build them all on the event loop, and deliveries would stop meanwhile. Before
anything runs, each operation is walked once, fragments included: deeper than MAX_DEPTH,
or more than MAX_FIELDS fields in its answer (each field counted once per object it is
asked of: a page of `first: 100` multiplies what is under it by 100, as many aliases add
up), and it is refused with a GraphQL error.

Introspection (`__schema`, `__type`) is counted too, exactly: its lists (types, fields,
args …) are as long as this schema makes them, so its fields are counted object by object
over the schema itself, and the count stops at MAX_FIELDS (aliases of `types { fields }`
would otherwise hold the event loop for seconds).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValidationRule,
    VariableNode,
    get_named_type,
)

from atwh.emulator.state import DEFAULT_PAGE, MAX_PAGE

MAX_DEPTH = 20  # the standard introspection query is 15 deep, counted this way
MAX_FIELDS = 10_000  # a full page of deliveries with every field is under 2,500
MAX_TOKENS = 10_000  # parsing stops here (the introspection query has under 400)
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # JSON, estimated before it is made (`larger_than`)


class _TooMuch(Exception):
    pass


def limits_rule(variables: dict[str, Any] | None) -> type[ValidationRule]:
    """A validation rule enforcing MAX_DEPTH and MAX_FIELDS, for these variable values."""

    class RequestLimits(ValidationRule):
        def enter_document(self, node: Any, *_: Any) -> None:
            fragments = {
                d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)
            }
            for op in node.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                walk = _Walk(self.context.schema, fragments, variables or {})
                try:
                    walk.selections(op.selection_set, _root(self.context.schema, op), 1, 1, ())
                except _TooMuch as e:
                    self.report_error(GraphQLError(str(e), op))

    return RequestLimits


def _root(schema: GraphQLSchema, op: OperationDefinitionNode) -> Any:
    if op.operation == OperationType.MUTATION:
        return schema.mutation_type
    if op.operation == OperationType.SUBSCRIPTION:
        return schema.subscription_type
    return schema.query_type


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.fields = 0

    def _count(self, n: int) -> None:
        self.fields += n
        if self.fields > MAX_FIELDS:
            raise _TooMuch(
                f"Query asks for more than {MAX_FIELDS} fields in all (counting each "
                "field once per object it is asked of); ask for smaller pages "
                "(first) or fewer nested lists."
            )

    def selections(
        self,
        selection_set: SelectionSetNode,
        parent: Any,
        times: int,
        depth: int,
        spread: tuple[str, ...],
    ) -> None:
        if depth > MAX_DEPTH:
            raise _TooMuch(
                f"Query is deeper than {MAX_DEPTH} levels; the emulator answers no deeper."
            )
        for sel in selection_set.selections:
            # each field once per object it is asked of; a fragment counts 1, so that no
            # walk is long however the fragments spread each other
            self._count(times if isinstance(sel, FieldNode) else 1)
            if isinstance(sel, FieldNode):
                if sel.selection_set is None:
                    continue
                meta = _meta_root(self.schema, sel)
                if meta is not None:  # __schema or __type: over the schema's own objects
                    for _ in range(times):
                        self.introspection(sel.selection_set, meta, depth + 1, spread)
                    continue
                fields = getattr(parent, "fields", None) or {}
                definition = fields.get(sel.name.value)
                inner = get_named_type(definition.type) if definition is not None else None
                page = self._page(definition, sel)
                self.selections(sel.selection_set, inner, times * page, depth + 1, spread)
            elif isinstance(sel, InlineFragmentNode):
                condition = sel.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                self.selections(sel.selection_set, kind, times, depth, spread)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:  # other rules report these
                    continue
                kind = self.schema.get_type(fragment.type_condition.name.value)
                self.selections(fragment.selection_set, kind, times, depth, (*spread, name))

    def introspection(
        self,
        selection_set: SelectionSetNode,
        objects: list[Any],
        depth: int,
        spread: tuple[str, ...],
    ) -> None:
        """Count a selection on introspection objects (the schema, its types, fields,
        arguments, enum values, directives), each field once per object."""
        if depth > MAX_DEPTH:
            raise _TooMuch(
                f"Query is deeper than {MAX_DEPTH} levels; the emulator answers no deeper."
            )
        for obj in objects:
            for sel in selection_set.selections:
                self._count(1)
                if isinstance(sel, FieldNode):
                    if sel.selection_set is not None:
                        inner = _meta_children(self.schema, obj, sel.name.value)
                        if inner:
                            self.introspection(sel.selection_set, inner, depth + 1, spread)
                elif isinstance(sel, InlineFragmentNode):
                    self.introspection(sel.selection_set, [obj], depth, spread)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in spread:  # other rules report these
                        continue
                    self.introspection(fragment.selection_set, [obj], depth, (*spread, name))

    def _page(self, definition: Any, node: FieldNode) -> int:
        """How many objects a field answers with at most: `first` for the paged ones."""
        if definition is None or "first" not in definition.args:
            return 1
        value: Any = None
        for arg in node.arguments or ():
            if arg.name.value == "first":
                if isinstance(arg.value, IntValueNode):
                    value = int(arg.value.value)
                elif isinstance(arg.value, VariableNode):
                    value = self.variables.get(arg.value.name.value, MAX_PAGE)
                else:
                    value = MAX_PAGE
        if value is None:
            return DEFAULT_PAGE
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_PAGE
        return max(min(value, MAX_PAGE), 1)


def _meta_root(schema: GraphQLSchema, node: FieldNode) -> list[Any] | None:
    """The objects `__schema` or `__type(name:)` answers with (None for other fields)."""
    name = node.name.value
    if name == "__schema":
        return [schema]
    if name == "__type":
        for arg in node.arguments or ():
            if arg.name.value == "name" and isinstance(arg.value, StringValueNode):
                kind = schema.get_type(arg.value.value)
                return [kind] if kind is not None else []
        # a variable's name: the largest type, the most it can be
        return [max(schema.type_map.values(), key=lambda t: len(_members(t)))]
    return None


def _members(kind: Any) -> dict[str, Any]:
    return getattr(kind, "fields", None) or getattr(kind, "values", None) or {}


def _meta_children(schema: GraphQLSchema, obj: Any, field: str) -> list[Any]:
    """The objects an introspection field of `obj` answers with, as graphql-core's
    introspection resolvers make them (deprecated ones included: the most there can be)."""
    if isinstance(obj, GraphQLSchema):
        if field == "types":
            return list(obj.type_map.values())
        if field == "directives":
            return list(obj.directives)
        kind = {"queryType": obj.query_type, "mutationType": obj.mutation_type}.get(field)
        kind = kind or (obj.subscription_type if field == "subscriptionType" else None)
        return [kind] if kind is not None else []
    if isinstance(obj, GraphQLObjectType | GraphQLInterfaceType):
        if field == "fields":
            return list(obj.fields.values())
        if field == "interfaces":
            return list(obj.interfaces)
    if isinstance(obj, GraphQLInterfaceType | GraphQLUnionType) and field == "possibleTypes":
        return list(schema.get_possible_types(obj))
    if isinstance(obj, GraphQLEnumType) and field == "enumValues":
        return list(obj.values.values())
    if isinstance(obj, GraphQLInputObjectType) and field == "inputFields":
        return list(obj.fields.values())
    if field == "args":
        return list(getattr(obj, "args", {}).values())
    if field == "type":  # a field's or an argument's type
        kind = getattr(obj, "type", None)
        return [kind] if kind is not None else []
    if field == "ofType":
        kind = getattr(obj, "of_type", None)
        return [kind] if kind is not None else []
    return []


def larger_than(answer: Any, limit: int) -> bool:
    """Whether `answer` as JSON would pass `limit` bytes, found without making it: the
    same string (an event's payload of up to 1 MiB) may be asked for thousands of times
    under aliases, and the JSON of that would not fit in memory. An estimate: the JSON's
    length in characters, escapes aside."""
    size = 0
    stack = [answer]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 3
        elif isinstance(item, dict):
            size += 2 + len(item)
            for key, value in item.items():
                size += len(key) + 4
                stack.append(value)
        elif isinstance(item, list | tuple):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 8
        if size > limit:
            return True
    return False
