"""Digit patterns for ``collect.pattern``: one regex, rendered the same for Python and Asterisk.

A ``collect`` step checks the caller's digits with a regular expression. The
simulator runs it with Python's :mod:`re`; the dialplan runs it with Asterisk's
``REGEX()`` (POSIX extended), inside ``$[...]`` and ``${...}``. A pattern that
Python accepts can still break the dialplan: a stray ``]`` ends the ``$[...]``
expression early and the call takes a branch nobody wrote.

So a pattern is parsed (by Python's own regex parser) and written back in one
canonical form from a small grammar that means the same in both engines:
the DTMF characters ``0-9 * #``, character classes ``[0-9*#]``, groups ``( )``,
alternatives ``|``, repetitions ``? * + {n} {n,} {n,m}`` and the anchors ``^ $``.
Brackets, braces and parentheses in the output are always balanced, and
``*`` as a literal is written ``[*]`` (no backslash, which the dialplan would
eat). Anything else is refused at validate time with a message in words.
"""

from __future__ import annotations

import re
import warnings
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]
from typing import Any

__all__ = ["MAX_DIGITS", "canonical_pattern"]

#: Longest digit string a collect step takes; longer repetitions can never match.
MAX_DIGITS = 32

_DTMF = frozenset("0123456789*#")
# As a literal outside a class: '*' and '+' would be quantifiers, so bracket them.
_LITERAL_OUT = {"*": "[*]"}


def canonical_pattern(text: str) -> str:
    """The pattern rewritten in the shared grammar; ValueError says why not."""
    if not text:
        raise ValueError("an empty pattern matches everything; leave 'pattern' out instead")
    try:
        with warnings.catch_warnings():
            # "Possible nested set" for '[[': a '[' inside [..] is refused below anyway.
            warnings.simplefilter("ignore", FutureWarning)
            parsed = P.parse(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    except RecursionError:
        raise ValueError("pattern is nested too deeply") from None
    except OverflowError:  # x{99999999999}
        raise ValueError(f"a repetition over {MAX_DIGITS} can never match") from None
    if parsed.state.flags & ~(C.SRE_FLAG_UNICODE):
        raise ValueError("inline flags such as (?i) are not supported")
    return _sequence(list(parsed))


def _sequence(items: list[tuple[Any, Any]]) -> str:
    # Python's parser factors a common prefix out of alternatives ('000|01' is '0' then
    # '00|1'): an alternation beside other items is grouped, or '|' would take them in.
    if len(items) == 1:
        return _item(*items[0])
    return "".join(f"({_item(op, av)})" if op is C.BRANCH else _item(op, av)
                   for op, av in items)


def _item(op: Any, av: Any) -> str:
    if op is C.LITERAL:
        ch = chr(av)
        if ch not in _DTMF:
            raise ValueError(
                f"the character {ch!r} can never be dialled (digits are 0-9, * and #); "
                "use [..] for a choice of keys and {n,m} for a repetition")
        return _LITERAL_OUT.get(ch, ch)
    if op is C.IN:
        return _char_class(av)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        lo, hi, sub = av
        return _atom(list(sub)) + _quantifier(lo, hi)
    if op is C.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise ValueError("inline flags such as (?i:...) are not supported")
        return "(" + _sequence(list(sub)) + ")"
    if op is C.BRANCH:
        _, alternatives = av
        parts = [_sequence(list(alt)) for alt in alternatives]
        if any(not p for p in parts):
            raise ValueError("an alternative '|' is empty: write (1|2), not (1|)")
        return "|".join(parts)
    if op is C.AT:
        if av is C.AT_BEGINNING:
            return "^"
        if av is C.AT_END:
            return "$"
        raise ValueError("only ^ (start) and $ (end) anchors are supported")
    if op is C.ANY:
        raise ValueError("'.' is not supported: use [0-9*#] for any key")
    if op in (C.GROUPREF, C.GROUPREF_EXISTS):
        raise ValueError("back-references are not supported")
    if op in (C.ASSERT, C.ASSERT_NOT):
        raise ValueError("look-ahead and look-behind (?=...) are not supported")
    raise ValueError(f"unsupported regular expression construct ({str(op).lower()})")


def _atom(sub: list[tuple[Any, Any]]) -> str:
    """What a quantifier applies to: one item as is, anything longer in a group."""
    if len(sub) == 1 and sub[0][0] in (C.LITERAL, C.IN, C.SUBPATTERN):
        text = _item(*sub[0])
        return text
    return "(" + _sequence(sub) + ")"


def _quantifier(lo: int, hi: Any) -> str:
    unbounded = hi is C.MAXREPEAT
    if lo > MAX_DIGITS or (not unbounded and hi > MAX_DIGITS):
        raise ValueError(f"a repetition over {MAX_DIGITS} can never match "
                         f"(a collect step takes at most {MAX_DIGITS} digits)")
    if unbounded:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if (lo, hi) == (0, 1):
        return "?"
    if lo == hi:
        return f"{{{lo}}}"
    return f"{{{lo},{hi}}}"


def _char_class(items: list[tuple[Any, Any]]) -> str:
    out: list[str] = []
    for op, av in items:
        if op is C.NEGATE:
            raise ValueError("negated classes [^...] are not supported: list the keys")
        if op is C.LITERAL:
            ch = chr(av)
            if ch not in _DTMF:
                raise ValueError(f"the character {ch!r} in [..] can never be dialled "
                                 "(digits are 0-9, * and #)")
            out.append(ch)
        elif op is C.RANGE:
            lo, hi = chr(av[0]), chr(av[1])
            if not (lo.isdigit() and hi.isdigit()):
                raise ValueError(f"the range {lo}-{hi} in [..] must be between digits, e.g. 0-9")
            out.append(f"{lo}-{hi}")
        else:
            raise ValueError("only keys and digit ranges are supported inside [..]")
    return "[" + "".join(out) + "]"
