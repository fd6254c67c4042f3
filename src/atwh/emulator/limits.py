"""How much one GraphQL request may ask of the emulator: a validation rule.

The schema has cycles (a delivery's `webhook` has `deliveries`, whose nodes have a
`webhook` …), so a query of a hundred bytes can ask for a million objects; graphql-core
would build them all on the event loop, and deliveries would stop meanwhile. Before
anything runs, each operation is walked once, fragments included: deeper than MAX_DEPTH,
or more than MAX_FIELDS fields in its answer (each field counted once per object it is
asked of: a page of `first: 100` multiplies what is under it by 100, as many aliases add
up), and it is refused with a GraphQL error.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
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
            self.fields += times if isinstance(sel, FieldNode) else 1
            if self.fields > MAX_FIELDS:
                raise _TooMuch(
                    f"Query asks for more than {MAX_FIELDS} fields in all (counting each "
                    "field once per object it is asked of); ask for smaller pages "
                    "(first) or fewer nested lists."
                )
            if isinstance(sel, FieldNode):
                if sel.selection_set is None:
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
