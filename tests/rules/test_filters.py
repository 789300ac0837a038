"""Filter clauses: every operator, JSON equality, missing keys, AND."""

from __future__ import annotations

from typing import Any

import pytest

from questline.rules.filters import clause_matches, clause_problem, json_equal, matches
from questline.rules.questkit_models import FilterClause


def one(clause: FilterClause, value: Any) -> bool:
    return matches({"k": clause}, {"k": value})


@pytest.mark.parametrize(
    ("clause", "value", "expected"),
    [
        (FilterClause(eq="boots"), "boots", True),
        (FilterClause(eq="boots"), "hat", False),
        (FilterClause(eq=None), None, True),
        (FilterClause(eq=None), 0, False),
        (FilterClause(eq=1), 1.0, True),
        (FilterClause(eq=1), True, False),
        (FilterClause(eq=True), 1, False),
        (FilterClause(eq=False), 0, False),
        (FilterClause(eq="1"), 1, False),
        (FilterClause(eq={"a": [1, {"b": 2}]}), {"a": [1, {"b": 2}]}, True),
        (FilterClause(eq={"a": [1, {"b": 2}]}), {"a": [1, {"b": 3}]}, False),
        (FilterClause(eq={"a": 1}), {"a": 1, "b": 2}, False),
        (FilterClause(eq=[1, 2]), [2, 1], False),
        (FilterClause(eq=[1, True]), [1, 1], False),
        (FilterClause(gte=10), 10, True),
        (FilterClause(gte=10), 9.99, False),
        (FilterClause(gt=10), 10, False),
        (FilterClause(gt=10), 10.01, True),
        (FilterClause(lte=10), 10, True),
        (FilterClause(lte=10), 10.5, False),
        (FilterClause(lt=10), 10, False),
        (FilterClause(lt=10), -3, True),
        (FilterClause(gte=0.5), 49.99, True),
        (FilterClause(in_=["a", "b"]), "b", True),
        (FilterClause(in_=["a", "b"]), "c", False),
        (FilterClause(in_=[1, 2]), 2.0, True),
        (FilterClause(in_=[1, 2]), True, False),
        (FilterClause(in_=[None]), None, True),
        (FilterClause(in_=[]), "a", False),
        (FilterClause(in_=[["x"]]), ["x"], True),
    ],
)
def test_operator(clause: FilterClause, value: Any, expected: bool) -> None:
    assert one(clause, value) is expected


@pytest.mark.parametrize("op", ["gte", "lte", "gt", "lt"])
@pytest.mark.parametrize("value", [True, False, "5", None, [5], {"v": 5}, float("nan")])
def test_numeric_operators_never_match_non_numbers(op: str, value: Any) -> None:
    # operand 0 with gte/lte, 10/-10 for gt/lt: a number would match every one of these
    operand = {"gte": 0, "lte": 10, "gt": -10, "lt": 10}[op]
    assert not one(FilterClause(**{op: operand}), value)
    assert one(FilterClause(**{op: operand}), 5)


@pytest.mark.parametrize(
    "clause",
    [FilterClause(eq=None), FilterClause(gte=0), FilterClause(lt=1e9), FilterClause(in_=[None])],
)
def test_missing_key_never_matches(clause: FilterClause) -> None:
    assert not matches({"k": clause}, {"other": None})
    assert not matches({"k": clause}, {})


def test_all_keys_must_match() -> None:
    flt = {"product": FilterClause(eq="boots"), "amount": FilterClause(gte=20)}
    assert matches(flt, {"product": "boots", "amount": 49.99, "extra": 1})
    assert not matches(flt, {"product": "boots", "amount": 10})
    assert not matches(flt, {"product": "hat", "amount": 49.99})
    assert not matches(flt, {"product": "boots"})


@pytest.mark.parametrize("flt", [None, {}])
def test_no_filter_matches_everything(flt: Any) -> None:
    assert matches(flt, {})
    assert matches(flt, {"anything": 1})


def test_plain_mapping_clauses_behave_like_structs() -> None:
    flt = {"amount": {"gte": 20}, "tier": {"in": ["gold"]}, "ok": {"eq": True}}
    assert matches(flt, {"amount": 20, "tier": "gold", "ok": True})
    assert not matches(flt, {"amount": 20, "tier": "gold", "ok": 1})


def test_keys_are_literal_not_paths() -> None:
    flt = {"a.b": FilterClause(eq=1)}
    assert matches(flt, {"a.b": 1})
    assert not matches(flt, {"a": {"b": 1}})


@pytest.mark.parametrize(
    ("clause", "fragment"),
    [
        ({}, "exactly one"),
        ({"eq": 1, "gte": 2}, "exactly one"),
        ({"neq": 1}, "unknown filter operator 'neq'"),
        ({"gte": True}, "`gte` needs a finite number"),
        ({"lt": "5"}, "`lt` needs a finite number"),
        ({"gt": float("inf")}, "`gt` needs a finite number"),
        ({"in": "ab"}, "`in` needs an array"),
        ("eq", "must be an object"),
    ],
)
def test_clause_problems(clause: Any, fragment: str) -> None:
    problem = clause_problem(clause)
    assert problem is not None and fragment in problem
    with pytest.raises(ValueError, match="."):
        clause_matches(clause, 1)


def test_valid_clauses_have_no_problem() -> None:
    for clause in ({"eq": None}, {"in": []}, {"lte": -1.5}, FilterClause(eq=[1])):
        assert clause_problem(clause) is None


def test_struct_clause_needs_exactly_one_operator() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        FilterClause(eq=1, gte=2)
    with pytest.raises(ValueError, match="exactly one"):
        FilterClause()


def test_json_equal_is_symmetric_about_bools() -> None:
    assert not json_equal(1, True)
    assert not json_equal(True, 1)
    assert json_equal(True, True)
    assert json_equal({"a": 1.0}, {"a": 1})
    assert not json_equal("", None)
