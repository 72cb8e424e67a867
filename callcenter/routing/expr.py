"""Skill requirement expressions: ``billing >= 5 and (english or spanish >= 7)``.

Grammar (keywords are lowercase; skill names follow the config's name alphabet)::

    expr  := or
    or    := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | atom
    atom  := "(" expr ")" | SKILL [CMP LEVEL]
    CMP   := ">=" | ">" | "<=" | "<" | "==" | "!="
    LEVEL := 0..10

A bare ``SKILL`` means "has the skill" (level >= 1); an agent without a skill has level 0
for comparisons, so ``not spanish`` and ``spanish < 5`` hold for an agent who has none.

Why a hand-written recursive-descent parser: the grammar is six rules, the error messages
must name the column inside the expression (a parser generator's messages would have to be
translated anyway), and it adds no dependency. Nothing here uses ``eval``: an expression is
parsed into frozen nodes, and :func:`compile_expr` turns them into closures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "COMPARATORS",
    "KEYWORDS",
    "MAX_LEVEL",
    "All",
    "Any_",
    "Expr",
    "ExprError",
    "Has",
    "Not",
    "compile_expr",
    "evaluate",
    "parse_expr",
    "skills_of",
]

MAX_LEVEL = 10
KEYWORDS = frozenset({"and", "or", "not"})
COMPARATORS: dict[str, Callable[[int, int], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
#: Longest expression accepted: bounds parse time and recursion depth.
MAX_LENGTH = 1000
_MAX_DEPTH = 50

_TOKEN = re.compile(r"\s*(?:(?P<name>[a-z][a-z0-9_]*)|(?P<num>[0-9]+)|(?P<op>>=|<=|==|!=|>|<)"
                    r"|(?P<paren>[()]))")


class ExprError(ValueError):
    """A malformed expression; ``column`` is 1-based inside the expression text."""

    def __init__(self, message: str, column: int) -> None:
        self.reason = message
        self.column = column
        super().__init__(f"{message} at column {column} of the expression")


@dataclass(frozen=True)
class Has:
    """``skill op level``; ``column`` is where the skill name starts (1-based)."""

    skill: str
    op: str = ">="
    level: int = 1
    column: int = 1


@dataclass(frozen=True)
class Not:
    item: Expr


@dataclass(frozen=True)
class All:
    """Every item holds (``and``)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Any_:
    """At least one item holds (``or``)."""

    items: tuple[Expr, ...]


Expr = Has | Not | All | Any_


@dataclass(frozen=True)
class _Token:
    kind: str  # name, num, op, paren, end
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            bad = text[pos:].lstrip()
            column = len(text) - len(bad) + 1
            raise ExprError(f"unexpected character {bad[0]!r}", column)
        out.append(_Token(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup) + 1))
        pos = m.end()
    out.append(_Token("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        if self.tok.kind == "name" and self.tok.text == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Expr:
        expr = self.or_()
        if self.tok.kind != "end":
            raise ExprError(f"expected 'and', 'or' or the end, got {self.tok.text!r}",
                            self.tok.column)
        return expr

    def or_(self) -> Expr:
        items = [self.and_()]
        while self.keyword("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Any_(tuple(items))

    def and_(self) -> Expr:
        items = [self.not_()]
        while self.keyword("and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else All(tuple(items))

    def not_(self) -> Expr:
        start = self.tok
        if self.keyword("not"):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ExprError("expression nested too deeply", start.column)
            inner = self.not_()
            self.depth -= 1
            return Not(inner)
        return self.atom()

    def atom(self) -> Expr:
        tok = self.take()
        if tok.kind == "paren" and tok.text == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ExprError("expression nested too deeply", tok.column)
            inner = self.or_()
            self.depth -= 1
            close = self.take()
            if close.kind != "paren" or close.text != ")":
                raise ExprError(f"expected ')' to close the '(' at column {tok.column}, got "
                                f"{_shown(close)}", close.column)
            return inner
        if tok.kind == "name" and tok.text not in KEYWORDS:
            if self.tok.kind != "op":
                return Has(tok.text, column=tok.column)
            op = self.take()
            level = self.take()
            if level.kind != "num":
                raise ExprError(f"expected a level 0 to {MAX_LEVEL} after {op.text!r}, got "
                                f"{_shown(level)}", level.column)
            if int(level.text) > MAX_LEVEL:
                raise ExprError(f"level {level.text} is out of range (levels are 0 to "
                                f"{MAX_LEVEL})", level.column)
            return Has(tok.text, op.text, int(level.text), tok.column)
        raise ExprError(f"expected a skill, 'not' or '(', got {_shown(tok)}", tok.column)


def _shown(tok: _Token) -> str:
    return "the end" if tok.kind == "end" else repr(tok.text)


def parse_expr(text: str) -> Expr:
    """Parse ``text``; raise :class:`ExprError` with the column of the first problem."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if not text.strip():
        raise ExprError("empty expression (expected a skill, 'not' or '(')", 1)
    return _Parser(text).parse()


def skills_of(expr: Expr) -> Iterator[Has]:
    """Every skill comparison in ``expr``, left to right (for unknown-skill checks)."""
    match expr:
        case Has():
            yield expr
        case Not(item=item):
            yield from skills_of(item)
        case All(items=items) | Any_(items=items):
            for item in items:
                yield from skills_of(item)


def evaluate(expr: Expr, levels: Mapping[str, int]) -> bool:
    """Interpret ``expr`` over an agent's skill levels (the reference the compiled form must match)."""
    match expr:
        case Has(skill=skill, op=op, level=level):
            return COMPARATORS[op](levels.get(skill, 0), level)
        case Not(item=item):
            return not evaluate(item, levels)
        case All(items=items):
            return all(evaluate(i, levels) for i in items)
        case Any_(items=items):
            return any(evaluate(i, levels) for i in items)
    raise TypeError(f"not an expression: {expr!r}")


Predicate = Callable[[Mapping[str, int]], bool]


def compile_expr(expr: Expr) -> Predicate:
    """``expr`` as a closure over an agent's skill levels: no tree walk per decision."""
    match expr:
        case Has(skill=skill, op=op, level=level):
            # The comparisons are inlined per operator: a call through COMPARATORS costs
            # more than the comparison itself on the hot path.
            if op == ">=":
                return lambda lv: lv.get(skill, 0) >= level
            if op == ">":
                return lambda lv: lv.get(skill, 0) > level
            if op == "<=":
                return lambda lv: lv.get(skill, 0) <= level
            if op == "<":
                return lambda lv: lv.get(skill, 0) < level
            if op == "==":
                return lambda lv: lv.get(skill, 0) == level
            return lambda lv: lv.get(skill, 0) != level
        case Not(item=item):
            inner = compile_expr(item)
            return lambda lv: not inner(lv)
        case All(items=items):
            return _chain([compile_expr(i) for i in items], conjunction=True)
        case Any_(items=items):
            return _chain([compile_expr(i) for i in items], conjunction=False)
    raise TypeError(f"not an expression: {expr!r}")


def _chain(parts: list[Predicate], conjunction: bool) -> Predicate:
    """``p0 and p1 and ...`` as nested two-operand closures (no generator per call)."""
    if len(parts) == 1:
        return parts[0]
    first, rest = parts[0], _chain(parts[1:], conjunction)
    if conjunction:
        return lambda lv: first(lv) and rest(lv)
    return lambda lv: first(lv) or rest(lv)
