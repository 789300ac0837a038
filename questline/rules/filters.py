"""Mission criteria filters: does an event payload satisfy ``criteria.filter``?

A filter maps a top-level payload key to one clause with exactly one operator:
``eq`` (deep equality), ``gte``/``lte``/``gt``/``lt`` (numbers only), ``in``
(membership in a list). All keys must match (AND); a missing key never matches.

Equality follows JSON, not Python: ``true`` is not ``1`` (Python says it is),
while ``1`` and ``1.0`` are the same JSON number. Numeric operators never match
booleans or non-numbers, so ``{"gte": 1}`` is not satisfied by ``true`` or ``"5"``.
Keys are literal: ``"a.b"`` names the key ``a.b``, not a nested path.

Clauses may be ``FilterClause`` Structs (decoded catalogs) or plain mappings
(hand-built ones); this module only duck-types them so that it does not depend
on the models module (which depends on it for validation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import UNSET

OPERATORS: tuple[str, ...] = ("eq", "gte", "lte", "gt", "lt", "in")
NUMERIC_OPERATORS: frozenset[str] = frozenset({"gte", "lte", "gt", "lt"})


def is_number(value: Any) -> bool:
    """A JSON number: int or float, but not bool (``bool`` subclasses ``int`` in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def clause_items(clause: Any) -> list[tuple[str, Any]]:
    """The ``(operator, operand)`` pairs set in ``clause``, in declaration order.

    For a Struct an operator is "set" when it is not ``UNSET``, so ``{"eq": null}``
    (compare with null) stays distinguishable from an absent ``eq``.
    """
    if isinstance(clause, Mapping):
        return list(clause.items())
    items: list[tuple[str, Any]] = []
    for op in OPERATORS:
        value = getattr(clause, "in_" if op == "in" else op, UNSET)
        if value is not UNSET:
            items.append((op, value))
    return items


def clause_problem(clause: Any) -> str | None:
    """Why ``clause`` is not a valid filter clause, or None when it is."""
    if not isinstance(clause, Mapping) and not hasattr(clause, "eq"):
        return "a filter clause must be an object"
    items = clause_items(clause)
    unknown = [op for op, _ in items if op not in OPERATORS]
    if unknown:
        return f"unknown filter operator {unknown[0]!r}; expected one of {', '.join(OPERATORS)}"
    if len(items) != 1:
        got = ", ".join(op for op, _ in items) or "none"
        return f"a filter clause needs exactly one of {', '.join(OPERATORS)} (got {got})"
    op, operand = items[0]
    if op in NUMERIC_OPERATORS and not (is_number(operand) and math.isfinite(operand)):
        return f"`{op}` needs a finite number, got {operand!r}"
    if op == "in" and not isinstance(operand, list | tuple):
        return f"`in` needs an array, got {operand!r}"
    return None


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality with JSON semantics (bool is not a number; 1 == 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(json_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, Sequence) or isinstance(b, Sequence):
        return (
            isinstance(a, Sequence)
            and isinstance(b, Sequence)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return bool(a == b)


def clause_matches(clause: Any, value: Any) -> bool:
    """Does one payload value satisfy one clause? Raises ValueError on an invalid clause.

    Invalid clauses are a catalog bug (``validate_catalog`` rejects them), so
    they fail loudly instead of silently never matching.
    """
    problem = clause_problem(clause)
    if problem is not None:
        raise ValueError(problem)
    op, operand = clause_items(clause)[0]
    if op == "eq":
        return json_equal(value, operand)
    if op == "in":
        return any(json_equal(value, item) for item in operand)
    if not is_number(value):
        return False
    if op == "gte":
        return value >= operand
    if op == "lte":
        return value <= operand
    if op == "gt":
        return value > operand
    return value < operand  # "lt"


def matches(filter: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> bool:
    """True when every clause of ``filter`` holds for ``payload`` (no filter: always true)."""
    if not filter:  # None, UNSET (falsy) or {}
        return True
    if not isinstance(payload, Mapping):
        return False
    for key, clause in filter.items():
        if key not in payload:
            return False
        if not clause_matches(clause, payload[key]):
            return False
    return True
