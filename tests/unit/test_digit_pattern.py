"""``collect.pattern``: one canonical regex that Python and Asterisk's REGEX() read alike.

Property tests throw every string of the pattern alphabet at the parser: either
it is refused with a message, or its canonical form matches exactly the same
digit strings as the original, with balanced brackets and no backslash (so it
cannot end ``$[...]`` early in the dialplan). The real REGEX() is checked on
the PBX in ``tests/integration/test_hostile_config.py``.
"""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.flows.digit_pattern import canonical_pattern

ALPHABET = "0123456789*#[]{},?+|()-^$"
DTMF = "0123456789*#"


@pytest.mark.parametrize("pattern, canonical", [
    ("^[0-9]{6,8}$", "^[0-9]{6,8}$"),
    ("^1(2|3)*$", "^1([23])*$"),
    ("^(?:12|34)+$", "^(12|34)+$"),
    ("^1{,3}$", "^1{0,3}$"),
    ("^[*]1", "^[*]1"),  # one literal * stays bracketed
    ("^(12|3*)$", "^(12|3*)$"),
    ("^[*#]1$", "^[*#]1$"),
    ("1|2", "[12]"),                 # Python folds one-key alternatives into a class
    ("^0{1}9?", "^0{1}9?"),
    ("(1+)+", "(1+)+"),
    ("1*?", "1*"),                   # laziness cannot change whether it matches
    ("000|01", "0(00|1)"),           # a prefix Python factors out keeps '|' inside
])
def test_canonical_form(pattern: str, canonical: str) -> None:
    assert canonical_pattern(pattern) == canonical


@pytest.mark.parametrize("pattern, message", [
    ("^1]$", "the character ']' can never be dialled"),
    ("^1}", "the character '}' can never be dialled"),
    ("1{", "the character '{' can never be dialled"),
    ("[", "not a valid regular expression"),
    ("(1|)", "an alternative '|' is empty"),
    ("1{40}", "a repetition over 32 can never match"),
    ("(?=1)1", "look-ahead"),
    ("(1)\\1", "back-references are not supported"),
    ("[-1]", "the character '-' in [..] can never be dialled"),
    ("", "an empty pattern"),
    ("1,2", "the character ',' can never be dialled"),
    ("[[1]", "the character '[' in [..] can never be dialled"),
])
def test_refused_with_a_message(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        canonical_pattern(pattern)


def _balanced(text: str) -> bool:
    depth = {"[": 0, "{": 0, "(": 0}
    closing = {"]": "[", "}": "{", ")": "("}
    for ch in text:
        if ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] -= 1
            if depth[closing[ch]] < 0:
                return False
    return not any(depth.values())


@settings(max_examples=400, deadline=None)
@given(pattern=st.text(alphabet=ALPHABET, min_size=1, max_size=12),
       samples=st.lists(st.text(alphabet=DTMF, max_size=8), min_size=1, max_size=20))
def test_canonical_matches_like_the_original(pattern: str, samples: list[str]) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # '[[': "possible nested set"
            original = re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        with pytest.raises(ValueError):
            canonical_pattern(pattern)
        return
    try:
        canonical = canonical_pattern(pattern)
    except ValueError:
        return  # refused at validate: never reaches the dialplan
    assert _balanced(canonical), canonical
    assert "\\" not in canonical and '"' not in canonical
    assert canonical_pattern(canonical) == canonical  # a fixed point
    compiled = re.compile(canonical)
    for digits in samples + [""]:
        assert bool(original.search(digits)) == bool(compiled.search(digits)), (
            pattern, canonical, digits)
