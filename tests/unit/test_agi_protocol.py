"""AGI protocol core (sans-io): header, command formatting, response events."""

from __future__ import annotations

import random
import time

import pytest

from callcenter.asterisk.agi.protocol import (
    MAX_COMMAND_BYTES,
    AGICommandError,
    AGIError,
    AGIHangup,
    AGIRequest,
    AGIResponse,
    AGITimeout,
    ConnectionClosed,
    HangupNotice,
    HeaderParser,
    ProtocolError,
    ResponseParser,
    format_command,
)

# What Asterisk 22's res_agi sends for AGI(agi://127.0.0.1:4573/account_lookup,42,"a b").
HEADER = (
    b"agi_network: yes\n"
    b"agi_network_script: account_lookup\n"
    b"agi_request: agi://127.0.0.1:4573/account_lookup\n"
    b"agi_channel: PJSIP/1001-00000012\n"
    b"agi_language: en\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: 1718000000.42\n"
    b"agi_version: 22.0.0\n"
    b"agi_callerid: 1001\n"
    b"agi_calleridname: Zo\xc3\xab\n"
    b"agi_callingpres: 0\n"
    b"agi_dnid: 600\n"
    b"agi_rdnis: unknown\n"
    b"agi_context: cc-inbound\n"
    b"agi_extension: 600\n"
    b"agi_priority: 2\n"
    b"agi_enhanced: 0.0\n"
    b"agi_accountcode: \n"
    b"agi_threadid: 140000000000000\n"
    b"agi_arg_1: 42\n"
    b"agi_arg_2: a b\n"
    b"\n"
)


def parse_header(*chunks: bytes) -> AGIRequest:
    parser = HeaderParser()
    request = None
    for chunk in chunks:
        request = parser.feed(chunk)
    assert request is not None
    return request


# --- header ------------------------------------------------------------------------


def test_header_fields() -> None:
    request = parse_header(HEADER)
    assert request.script == "account_lookup"
    assert request.args == ("42", "a b")
    assert request.channel == "PJSIP/1001-00000012"
    assert request.uniqueid == "1718000000.42"
    assert request.callerid == "1001"
    assert request.is_network
    assert request.env["agi_calleridname"] == "Zoë"
    assert request.env["agi_accountcode"] == ""  # "agi_accountcode: " is an empty value


def test_header_env_is_read_only() -> None:
    request = parse_header(HEADER)
    with pytest.raises(TypeError):
        request.env["agi_channel"] = "x"  # type: ignore[index]


def test_header_fed_one_byte_at_a_time() -> None:
    parser = HeaderParser()
    results = [parser.feed(HEADER[i : i + 1]) for i in range(len(HEADER))]
    assert all(r is None for r in results[:-1])
    assert results[-1] is not None and results[-1].env["agi_calleridname"] == "Zoë"


def test_header_utf8_split_across_feeds() -> None:
    cut = HEADER.index(b"\xc3\xab") + 1  # between the two bytes of "ë"
    request = parse_header(HEADER[:cut], HEADER[cut:])
    assert request.env["agi_calleridname"] == "Zoë"


def test_header_invalid_utf8_is_replaced_not_fatal() -> None:
    request = parse_header(b"agi_request: x\nagi_calleridname: \xff\xfe\n\n")
    assert request.env["agi_calleridname"] == "\ufffd\ufffd"


@pytest.mark.parametrize(
    ("env", "script"),
    [
        ({"agi_network_script": "account_lookup?lang=fr"}, "account_lookup"),
        ({"agi_network_script": "cc/schedule_check"}, "schedule_check"),
        ({"agi_request": "agi://127.0.0.1/schedule_check"}, "schedule_check"),
        ({"agi_request": "/var/lib/asterisk/agi-bin/account_lookup.py"}, "account_lookup"),
        ({"agi_request": "account_lookup"}, "account_lookup"),
        ({"agi_channel": "PJSIP/1"}, ""),
    ],
)
def test_script_name(env: dict[str, str], script: str) -> None:
    assert AGIRequest(env).script == script


def test_callerid_unknown_is_none() -> None:
    assert AGIRequest({"agi_callerid": "unknown"}).callerid is None
    assert AGIRequest({}).callerid is None


def test_header_remainder_keeps_early_hangup() -> None:
    parser = HeaderParser()
    assert parser.feed(HEADER + b"HANG") is not None
    assert parser.remainder == b"HANG"
    events = ResponseParser().feed(parser.remainder + b"UP\n")
    assert events == [HangupNotice()]


def test_closed_mid_header() -> None:
    parser = HeaderParser()
    assert parser.feed(HEADER[:40]) is None
    with pytest.raises(ConnectionClosed, match="mid-header"):
        parser.feed_eof()


def test_closed_before_header() -> None:
    with pytest.raises(ConnectionClosed, match="before the header"):
        HeaderParser().feed_eof()


def test_eof_after_complete_header_is_not_an_error() -> None:
    parser = HeaderParser()
    parser.feed(HEADER)
    parser.feed_eof()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"hello\n\n",
        b"agi request: x\n\n",
        b"\n",  # empty header
    ],
)
def test_garbage_header_is_protocol_error(garbage: bytes) -> None:
    with pytest.raises(ProtocolError):
        HeaderParser().feed(garbage)


def test_header_line_limit() -> None:
    parser = HeaderParser(max_lines=10)
    with pytest.raises(ProtocolError, match="more than 10 lines"):
        parser.feed(b"".join(b"agi_arg_%d: x\n" % i for i in range(1, 12)))


def test_header_size_limit_without_newline() -> None:
    parser = HeaderParser(max_bytes=1024)
    parser.feed(b"agi_request: " + b"x" * 900)
    with pytest.raises(ProtocolError, match="1024"):
        parser.feed(b"x" * 200)


def test_header_size_limit_many_short_lines() -> None:
    parser = HeaderParser(max_bytes=1024, max_lines=10_000)
    with pytest.raises(ProtocolError, match="larger than 1024"):
        for i in range(1, 1000):  # bounded: the limit trips long before
            parser.feed(b"agi_arg_%d: xxxxxxxx\n" % i)


def test_default_limits_accept_a_real_header_and_reject_a_flood() -> None:
    assert HeaderParser().feed(HEADER) is not None
    with pytest.raises(ProtocolError):
        HeaderParser().feed(b"agi_x: " + b"y" * (64 * 1024 + 1))


# --- commands ----------------------------------------------------------------------


def asterisk_parse_args(line: str) -> list[str]:
    """Python port of res_agi.c parse_args(): how Asterisk splits a command line."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                argv.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            argv.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


def test_format_simple_command() -> None:
    assert format_command("GET VARIABLE", "CC_ACCOUNT") == b'GET VARIABLE "CC_ACCOUNT"\n'
    assert format_command("answer") == b"ANSWER\n"
    assert format_command("VERBOSE", "hi", 3) == b'VERBOSE "hi" "3"\n'
    assert format_command("STREAM FILE", "beep", "") == b'STREAM FILE "beep" ""\n'


def test_format_escapes_quotes_and_backslashes() -> None:
    line = format_command("SET VARIABLE", "X", 'say "hi" \\o/')
    assert line == b'SET VARIABLE "X" "say \\"hi\\" \\\\o/"\n'
    assert asterisk_parse_args(line.decode().rstrip("\n")) == [
        "SET", "VARIABLE", "X", 'say "hi" \\o/'
    ]


def test_format_newline_cannot_inject_a_second_command() -> None:
    hostile = '1001"\nEXEC Dial "PJSIP/premium-line\r\n'
    line = format_command("SET VARIABLE", "CC_CALLER", hostile)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert b"\r" not in line
    assert asterisk_parse_args(line.decode().rstrip("\n")) == [
        "SET", "VARIABLE", "CC_CALLER", '1001" EXEC Dial "PJSIP/premium-line  '
    ]


@pytest.mark.parametrize("value", ["", " ", "a b\tc", '"', "\\", '\\"', "ünïcödé €", "x" * 500])
def test_format_round_trips_through_asterisk_parser(value: str) -> None:
    line = format_command("SET VARIABLE", "V", value).decode()
    assert asterisk_parse_args(line.rstrip("\n")) == ["SET", "VARIABLE", "V", value]


@pytest.mark.parametrize("name", ["", "GET  VARIABLE", "GET\nVARIABLE", 'EXEC"', "GET_VAR"])
def test_format_rejects_bad_command_names(name: str) -> None:
    with pytest.raises(ValueError):
        format_command(name)


def test_format_rejects_line_asterisk_would_split() -> None:
    format_command("SET VARIABLE", "V", "x" * (MAX_COMMAND_BYTES - 40))
    with pytest.raises(ValueError, match="2047"):
        format_command("SET VARIABLE", "V", "x" * MAX_COMMAND_BYTES)


# --- responses ---------------------------------------------------------------------


def test_response_with_value_and_endpos() -> None:
    [response] = ResponseParser().feed(b"200 result=1 (dtmf) endpos=12345\n")
    assert response == AGIResponse(200, "1", "dtmf", {"endpos": "12345"})
    assert response.ok


def test_response_value_with_parentheses_and_spaces() -> None:
    [response] = ResponseParser().feed(b'200 result=1 ("Alice V" <2233> (home))\n')
    assert response.data == '"Alice V" <2233> (home)'
    assert response.extra == {}


def test_response_empty_result_with_timeout() -> None:
    [response] = ResponseParser().feed(b"200 result= (timeout)\n")
    assert (response.result, response.data) == ("", "timeout")


def test_response_plain_and_negative() -> None:
    parser = ResponseParser()
    first, second, third = parser.feed(b"200 result=0\n200 result=-1\n200 result=0 Gosub complete\n")
    assert (first.result, first.data) == ("0", None)
    assert second.result == "-1"
    assert (third.result, third.text) == ("0", "Gosub complete")


def test_response_digit() -> None:
    [pressed, star, none_, failed, get_data] = ResponseParser().feed(
        b"200 result=49 endpos=8640\n200 result=42\n200 result=0 endpos=100\n"
        b"200 result=-1 endpos=0\n200 result=123\n"
    )
    assert pressed.digit == "1" and pressed.extra["endpos"] == "8640"
    assert star.digit == "*"
    assert none_.digit is None and failed.digit is None
    assert get_data.digit is None  # GET DATA's "123" is digits, not chr(123)


def test_response_utf8_split_across_feeds() -> None:
    data = "200 result=1 (Zoë €)\n".encode()
    cut = data.index("€".encode()) + 1
    parser = ResponseParser()
    assert parser.feed(data[:cut]) == []
    [response] = parser.feed(data[cut:])
    assert response.data == "Zoë €"


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        (b"510 Invalid or unknown command\n", 510, "Invalid or unknown command"),
        (b"511 Command Not Permitted on a dead channel or intercept routine\n", 511,
         "Command Not Permitted on a dead channel or intercept routine"),
        (b"520 Invalid command syntax.  Proper usage not available.\n", 520,
         "Invalid command syntax.  Proper usage not available."),
    ],
)
def test_error_responses(line: bytes, code: int, text: str) -> None:
    [response] = ResponseParser().feed(line)
    assert (response.code, response.result, response.text) == (code, "", text)
    assert not response.ok


def test_503_keeps_result_and_text() -> None:
    [response] = ResponseParser().feed(b"503 result=-2 Memory allocation failure\n")
    assert (response.code, response.result, response.text) == (503, "-2", "Memory allocation failure")


def test_520_multiline_block_is_one_response() -> None:
    parser = ResponseParser()
    events = parser.feed(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: DATABASE GET <family> <key>\n"
        b"Retrieves an entry in the Asterisk database.\n"
    )
    assert events == []  # block still open
    assert not parser.idle
    [response] = parser.feed(b"520 End of proper usage.\n200 result=1\n")[:1]
    assert response.code == 520
    assert response.text == (
        "Invalid command syntax.  Proper usage follows:\n"
        " Usage: DATABASE GET <family> <key>\n"
        "Retrieves an entry in the Asterisk database."
    )
    assert parser.idle


def test_520_block_with_glued_end_line() -> None:
    # Older res_agi printed the usage without a newline before the closing line.
    [response, after] = ResponseParser().feed(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Answers channel.520 End of proper usage.\n"
        b"200 result=0\n"
    )
    assert response.code == 520 and response.text.endswith("\nAnswers channel.")
    assert after.code == 200


def test_520_block_is_bounded() -> None:
    parser = ResponseParser()
    parser.feed(b"520-Invalid command syntax.  Proper usage follows:\n")
    with pytest.raises(ProtocolError):
        for _ in range(1000):  # bounded: the limit trips at 200 lines
            parser.feed(b"usage line\n")


def test_hangup_notice_is_not_a_response() -> None:
    events = ResponseParser().feed(b"HANGUP\n200 result=1 (42)\n")
    assert events[0] == HangupNotice()
    assert isinstance(events[1], AGIResponse) and events[1].data == "42"


def test_interim_100_is_reported_as_code_100() -> None:
    [interim, final] = ResponseParser().feed(b"100 result=0 Trying...\n200 result=0\n")
    assert (interim.code, interim.text) == (100, "Trying...")
    assert final.code == 200


def test_closed_mid_response() -> None:
    parser = ResponseParser()
    assert parser.feed(b"200 result=1 (4") == []
    with pytest.raises(ConnectionClosed, match="mid-response"):
        parser.feed_eof()


def test_closed_inside_520_block() -> None:
    parser = ResponseParser()
    parser.feed(b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n")
    with pytest.raises(ConnectionClosed, match="mid-response"):
        parser.feed_eof()


def test_closed_between_responses_is_still_closed() -> None:
    parser = ResponseParser()
    parser.feed(b"200 result=1\n")
    with pytest.raises(ConnectionClosed, match="between responses"):
        parser.feed_eof()


@pytest.mark.parametrize("line", [b"hello\n", b"2000 result=1\n", b"200result=1\n", b"\x00\x01\n"])
def test_garbage_response_is_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(line)


def test_response_line_limit() -> None:
    parser = ResponseParser(max_line=100)
    with pytest.raises(ProtocolError):
        parser.feed(b"200 result=1 (" + b"x" * 200)


def test_exception_hierarchy() -> None:
    for exc in (ProtocolError, AGIHangup, ConnectionClosed, AGICommandError, AGITimeout):
        assert issubclass(exc, AGIError)
    assert issubclass(ConnectionClosed, AGIHangup)
    assert issubclass(AGITimeout, TimeoutError)
    error = AGICommandError(510, "Invalid or unknown command", "FOO")
    assert (error.code, error.message, error.command) == (510, "Invalid or unknown command", "FOO")
    assert "510" in str(error)


def test_response_repr_hides_variable_values() -> None:
    [response] = ResponseParser().feed(b"200 result=1 (s3cr3t-pin)\n")
    assert "s3cr3t" not in repr(response)


def test_fuzz_parsers_raise_only_protocol_errors() -> None:
    # Whatever arrives on the socket, the parsers either parse it or raise an AGIError
    # subclass the server handles; never IndexError/ValueError, never slow.
    rng = random.Random(4573)
    pieces = [b"200 ", b"result=", b"(", b")", b"-1", b" endpos=", b"\n", b"HANGUP",
              b"520-", b"520 ", b"agi_", b": ", b"\xc3", b"\xff", b" ", b"x=y", b"\r", b"100 "]
    started = time.process_time()
    for _ in range(2000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        for parser in (ResponseParser(), HeaderParser()):
            try:
                parser.feed(data)
                parser.feed_eof()
            except AGIError:
                pass
    assert time.process_time() - started < 5.0
