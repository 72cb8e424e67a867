"""Skill expressions: precedence, comparisons, located syntax errors, no crash on any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.routing.expr import (
    All,
    Any_,
    ExprError,
    Has,
    Not,
    compile_expr,
    evaluate,
    parse_expr,
    skills_of,
)


def test_the_issue_example_parses_with_precedence() -> None:
    assert parse_expr("billing >= 5 and (english or spanish >= 7)") == All((
        Has("billing", ">=", 5, 1),
        Any_((Has("english", ">=", 1, 19), Has("spanish", ">=", 7, 30))),
    ))
    # not binds tighter than and, and tighter than or
    assert parse_expr("not a or b and c") == Any_((
        Not(Has("a", column=5)), All((Has("b", column=10), Has("c", column=16)))))


@pytest.mark.parametrize(("text", "levels", "expected"), [
    ("billing >= 5 and (english or spanish >= 7)", {"billing": 5, "english": 1}, True),
    ("billing >= 5 and (english or spanish >= 7)", {"billing": 5, "spanish": 6}, False),
    ("billing >= 5 and (english or spanish >= 7)", {"billing": 4, "english": 9}, False),
    ("not spanish", {}, True),          # a skill the agent lacks is level 0
    ("spanish < 5", {}, True),
    ("spanish == 0", {"english": 3}, True),
    ("spanish != 6", {"spanish": 6}, False),
    ("a > 3 and a <= 4", {"a": 4}, True),
    ("not (a or b)", {"b": 1}, False),
])
def test_evaluation(text: str, levels: dict[str, int], expected: bool) -> None:
    expr = parse_expr(text)
    assert evaluate(expr, levels) is expected
    assert compile_expr(expr)(levels) is expected


@pytest.mark.parametrize(("text", "message", "column"), [
    ("billing >=", "expected a level 0 to 10 after '>=', got the end", 11),
    ("billing >= 11", "level 11 is out of range (levels are 0 to 10)", 12),
    ("(a or b", "expected ')' to close the '(' at column 1, got the end", 8),
    ("a and $", "unexpected character '$'", 7),
    ("Billing", "unexpected character 'B'", 1),
    ("a b", "expected 'and', 'or' or the end, got 'b'", 3),
    ("a and or b", "expected a skill, 'not' or '(', got 'or'", 7),
    ("   ", "empty expression (expected a skill, 'not' or '(')", 1),
    ("a >= x", "expected a level 0 to 10 after '>=', got 'x'", 6),
    ("a)", "expected 'and', 'or' or the end, got ')'", 2),
    ("__import__('os')", "unexpected character '_'", 1),
])
def test_syntax_errors_name_their_column(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert (info.value.reason, info.value.column) == (message, column)
    assert str(info.value) == f"{message} at column {column} of the expression"


def test_nesting_and_length_are_bounded() -> None:
    with pytest.raises(ExprError, match="nested too deeply"):
        parse_expr("(" * 60 + "a" + ")" * 60)
    with pytest.raises(ExprError, match="nested too deeply"):
        parse_expr("not " * 60 + "a")
    with pytest.raises(ExprError, match="longer than 1000"):
        parse_expr("a or " * 300 + "a")


def test_skills_of_lists_every_comparison_in_order() -> None:
    assert [h.skill for h in skills_of(parse_expr("a and not (b or c > 2)"))] == ["a", "b", "c"]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abn ot()<>=!0123456789_x$", max_size=40))
def test_any_text_parses_or_is_a_located_error(text: str) -> None:
    try:
        expr = parse_expr(text)
    except ExprError as exc:
        assert 1 <= exc.column <= len(text) + 1
    else:
        assert evaluate(expr, {"a": 3}) == compile_expr(expr)({"a": 3})
