"""sipp scenario builders (``callcenter.testing.sipp``): what the INVITE carries, and
credentials that cannot be written into sipp's ``[authentication]`` keyword refused
before any call is placed."""

from __future__ import annotations

import pytest

from callcenter.testing.sipp import SippError, invite, sdp


def test_an_invite_answering_a_challenge_carries_the_keyword_and_its_cseq() -> None:
    xml = invite("alice", dtmf=False, cseq=2, credentials=("alice", "pw-_9"))
    assert "CSeq: 2 INVITE" in xml
    assert "\n      [authentication username=alice password=pw-_9]\n" in xml
    assert "telephone-event" not in xml and xml.count("a=sendrecv") == 1


def test_a_plain_invite_offers_dtmf_events_and_no_credentials() -> None:
    xml = invite("15550001111")
    assert "CSeq: 1 INVITE" in xml and "[authentication" not in xml
    assert "m=audio [media_port] RTP/AVP 0 101" in xml
    assert "a=rtpmap:101 telephone-event/8000" in xml
    assert sdp("agent").startswith("      v=0\n      o=agent ")


@pytest.mark.parametrize("password", ["two words", "a]b", "<x>", "a&b", "tab\there"])
def test_credentials_that_would_break_the_keyword_are_refused(password: str) -> None:
    with pytest.raises(SippError, match=r"\[authentication\] keyword"):
        invite("alice", credentials=("alice", password))
    with pytest.raises(SippError):
        invite("alice", credentials=(password, "secret"))
