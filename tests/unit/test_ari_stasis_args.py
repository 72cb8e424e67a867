"""The Stasis argument contract: what the generator writes is what the router parses, and
no argument list, however odd, raises anything but StasisArgsError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.asterisk.stasis_args import (
    KEYS,
    QueueCall,
    StasisArgsError,
    dialplan_args,
)
from callcenter.config.loader import load_config
from dialplan.generator import render
from tests.passwords import fake_passwords
from tests.conftest import EXAMPLE

names = st.from_regex(r"\A[a-z][a-z0-9_]{0,47}\Z")
calls = st.builds(
    QueueCall,
    queue=names,
    skills=st.lists(names, unique=True, max_size=5).map(tuple),
    priority=st.integers(0, 999_999),
    language=st.none() | st.from_regex(r"\A[a-z]{2,3}(_[A-Za-z0-9]{2,8})?\Z"),
    entry=st.none() | names,
    account=st.none() | st.from_regex(r"\A[0-9]{1,32}\Z"),
)


@given(calls)
def test_parse_of_format_is_identity(call: QueueCall) -> None:
    args = call.format()
    # What Asterisk does to Stasis(app,<joined>): split on commas. No value may add one.
    assert ",".join(args).split(",") == args
    assert QueueCall.parse(args) == call


@given(st.lists(st.text(max_size=30), max_size=8))
def test_arbitrary_args_raise_only_the_contracts_error(args: list[str]) -> None:
    try:
        QueueCall.parse(args)
    except StasisArgsError as exc:
        assert str(exc).startswith("Stasis args")


@given(st.lists(st.sampled_from(["sales", "skills=a+b", "priority=5", "priority=x",
                                 "language=en", "entry=", "account=12", "bogus=1", "=",
                                 "skills=a+a", "account=1;2"]), max_size=8))
def test_near_valid_args_raise_only_the_contracts_error(args: list[str]) -> None:
    try:
        QueueCall.parse(args)
    except StasisArgsError:
        pass


def test_parse_reads_what_the_real_dialplan_sends() -> None:
    # As recorded from the queue hand-off integration test (VIP, account found).
    args = ["customer_service", "skills=billing", "priority=10", "language=en",
            "entry=main_line", "account=100200"]
    assert QueueCall.parse(args) == QueueCall(
        queue="customer_service", skills=("billing",), priority=10, language="en",
        entry="main_line", account="100200")


def test_empty_values_mean_none() -> None:
    args = ["sales", "skills=", "priority=0", "language=en", "entry=", "account="]
    assert QueueCall.parse(args) == QueueCall(queue="sales", language="en")


def test_empty_priority_is_zero() -> None:
    """What Asterisk sends for a call that reached cc-queue without the flow's variables
    (``$[ + ]`` evaluates to ''), seen in tests/integration/test_ari_dispatch.py."""
    args = ["sales", "skills=", "priority=", "language=en", "entry=", "account="]
    assert QueueCall.parse(args) == QueueCall(queue="sales", priority=0, language="en")


@pytest.mark.parametrize(("args", "index", "fragment"), [
    ([], None, "empty"),
    (["Sales"], 0, "queue name 'Sales'"),
    (["sales", "priority=high"], 1, "priority: 'high' is not a whole number"),
    (["sales", "priority=-1"], 1, "priority: '-1'"),
    (["sales", "skills=a", "colour=red"], 2, "unknown key 'colour' (known: skills,"),
    (["sales", "priority=1", "language=en", "priority=2"], 3,
     "duplicate key 'priority' (first at args[1])"),
    (["sales", "justtext"], 1, "'justtext' is not key=value"),
    (["sales", "skills=billing+billing"], 1, "skills: duplicate"),
    (["sales", "skills=billing+"], 1, "skills: '' is not a skill name"),
    (["sales", "account=12a"], 1, "account: '12a' is not an account id"),
    (["sales", "entry=x", "language=${SHELL(id)}"], 2, "language: '${SHELL(id)}'"),
])
def test_malformed_args_are_located(args: list[str], index: int | None, fragment: str) -> None:
    with pytest.raises(StasisArgsError) as info:
        QueueCall.parse(args)
    assert info.value.index == index
    assert fragment in str(info.value)
    where = "Stasis args" if index is None else f"Stasis args[{index}]"
    assert str(info.value).startswith(where + ": ")


def test_invalid_values_cannot_be_built() -> None:
    with pytest.raises(StasisArgsError, match="skills: invalid value 'a,b'"):
        QueueCall(queue="sales", skills=("a,b",))
    with pytest.raises(StasisArgsError, match="priority"):
        QueueCall(queue="sales", priority=-1)


def test_dialplan_args_needs_exactly_the_contract_keys() -> None:
    with pytest.raises(ValueError, match="missing \\['account'\\]"):
        dialplan_args("sales", {k: "" for k in KEYS if k != "account"})


def test_generator_formats_the_queue_context_with_the_contract() -> None:
    loaded = load_config(EXAMPLE)
    text = render(loaded.config, loaded.where,
                  agent_passwords=fake_passwords(loaded.config))["extensions_callcenter.conf"]
    app = loaded.config.settings.queue_app
    lines = [ln for ln in text.splitlines() if f"Stasis({app}," in ln and "same" in ln]
    assert len(lines) == len(loaded.config.queues)
    for line in lines:
        inner = line.split(f"Stasis({app},", 1)[1].rsplit(")", 1)[0]
        # The dialplan expressions stand where values go: one arg per key, in order.
        args = inner.replace("${FILTER(0-9,", "${FILTER(0-9;").split(",")
        assert [a.split("=", 1)[0] for a in args[1:]] == list(KEYS)
        assert args[0] in loaded.config.queues
