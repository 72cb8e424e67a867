"""The test softphone's input checks, before any baresip runs."""

from __future__ import annotations

import pytest

from callcenter.testing.softphone import Softphone


@pytest.mark.parametrize("bad", [
    "", "1001 2002", "1001\r\nVia: x", "sip:1001@host;evil=1", "<sip:1001@h>", "10'01",
    "x" * 41, "sip:a@b:99999999",
])
async def test_dial_refuses_what_is_no_number_or_plain_uri(bad: str) -> None:
    phone = Softphone("carmen", "secret", registrar_port=5060, sip_port=5070,
                      ctrl_port=5071, rtp_port=5072)
    with pytest.raises(ValueError, match="not a number"):
        await phone.dial(bad)


@pytest.mark.parametrize("good", ["*70", "1001", "#", "+15551230001",
                                  "sip:1001@127.0.0.1:5060", "sip:*71@127.0.0.1"])
def test_dialable(good: str) -> None:
    from callcenter.testing.softphone import _DIALABLE

    assert _DIALABLE.fullmatch(good)


def test_password_never_in_repr() -> None:
    phone = Softphone("carmen", "s3cret-pass", registrar_port=5060, sip_port=5070,
                      ctrl_port=5071, rtp_port=5072)
    assert "s3cret" not in repr(phone)


@pytest.mark.parametrize(("user", "password", "host"), [
    ("carmen>;x", "secret", "127.0.0.1"),
    ("carmen", "pass;answermode=manual", "127.0.0.1"),
    ("carmen", "pass word", "127.0.0.1"),
    ("carmen", "secret", "localhost;x"),
])
def test_account_line_parts_are_checked(user: str, password: str, host: str) -> None:
    """user, password and host end up in baresip's account line: no extra parameter."""
    with pytest.raises(ValueError) as raised:
        Softphone(user, password, registrar_port=5060, sip_port=5070, ctrl_port=5071,
                  rtp_port=5072, host=host)
    assert password not in str(raised.value) or password == "secret"
