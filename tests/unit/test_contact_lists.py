"""Contact and DNC lists from CSV: encodings, delimiters, quoting, located problems,
merging, safe export; properties: the parser never crashes and accounts for every record."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.dialer.contacts import parse_contacts, parse_dnc
from callcenter.dialer.lists import decode, neutralise, read_table, write_table


def test_utf8_bom_semicolons_quoted_newlines_and_data_columns() -> None:
    data = ("\ufeffPhone;First name;notes\r\n"
            "(212) 555-0100;Zoë;\"line one\r\nline two\"\r\n"
            "+44 20 7946 0000;Bob;\r\n").encode("utf-8")
    parsed = parse_contacts(data)
    assert (parsed.encoding, parsed.delimiter, parsed.problems) == ("utf-8-sig", ";", ())
    ann, bob = parsed.contacts
    assert (ann.line, ann.number, ann.timezone) == (2, "+12125550100", "America/New_York")
    assert ann.data == {"First name": "Zoë", "notes": "line one\r\nline two"}
    assert (bob.line, bob.number, bob.timezone, bob.data) == (
        4, "+442079460000", "Europe/London", {"First name": "Bob"})


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_spreadsheet_encodings(encoding: str) -> None:
    text = "number\tname\n2125550100\tJosé Müller\n"
    parsed = parse_contacts(text.encode(encoding))
    assert parsed.delimiter == "\t"
    assert parsed.contacts[0].data == {"name": "José Müller"}


def test_cp1252_only_characters_and_latin1_fallback() -> None:
    assert decode("€ smart “quotes”".encode("cp1252")) == ("€ smart “quotes”", "cp1252")
    assert decode(b"\x81\xff")[1] == "latin-1"  # 0x81 is not a cp1252 character


def test_every_bad_record_is_reported_with_its_line_and_skipped() -> None:
    data = (b"number,name,tz\n"
            b"2125550100,Ann,\n"            # 2 ok
            b"call me,Bob,\n"               # 3 letters
            b"123,Cy,\n"                    # 4 too short
            b"3125550100,Di,Mars/Base\n"    # 5 bad zone
            b"3125550101,Ed,,extra\n"       # 6 too many fields
            b"3125550102,Flo\n"             # 7 ok: a trailing empty cell dropped
            b"\n"                           # 8 blank: skipped
            b"3125550103,\"Gus\n")          # 9 unclosed quote
    parsed = parse_contacts(data)
    assert [c.line for c in parsed.contacts] == [2, 7]
    assert [(p.line, p.reason.split(":")[0]) for p in parsed.problems] == [
        (3, "column 'number'"), (4, "column 'number'"), (5, "column 'tz'"),
        (6, "expected 3 fields (the header's), got 4"), (9, "unclosed quote")]
    assert "letters" in parsed.problems[0].reason
    assert "unknown time zone 'Mars/Base'" in parsed.problems[2].reason


def test_duplicates_are_merged_later_data_winning() -> None:
    data = b"number,name,plan\n2125550100,Ann,gold\n+1 212 555 0100,Annie,\n3125550100,Bo,x\n"
    parsed = parse_contacts(data)
    assert [(c.line, c.number, dict(c.data)) for c in parsed.contacts] == [
        (2, "+12125550100", {"name": "Annie", "plan": "gold"}),
        (4, "+13125550100", {"name": "Bo", "plan": "x"})]
    assert parsed.merged == {3: 2}


def test_a_file_without_number_column_or_header_is_one_problem() -> None:
    assert [str(p) for p in parse_contacts(b"name,plan\nAnn,gold\n").problems] == [
        ("line 1: no number column: name one of number, phone, phone_number, telephone, "
        "mobile (got: name, plan)")]
    assert [str(p) for p in parse_contacts(b"").problems] == [
        "line 1: empty file: expected a header row"]


def test_the_region_reads_national_numbers() -> None:
    parsed = parse_contacts(b"number\n020 7946 0000\n", region="GB")
    assert parsed.contacts[0].number == "+442079460000"


def test_dnc_lists() -> None:
    parsed = parse_dnc(b"Telephone;Reason\n2125550100;asked twice\n+44 20 7946 0000;\nxx;\n")
    assert parsed.numbers == {"+12125550100": "asked twice", "+442079460000": None}
    assert [p.line for p in parsed.problems] == [4]


@pytest.mark.parametrize("cell, shown", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+15550100", "'+15550100"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), ("", ""),
])
def test_export_neutralises_formulas(cell: str, shown: str) -> None:
    assert neutralise(cell) == shown
    assert list(csv.reader(io.StringIO(write_table(["c"], [[cell]]))))[1] == [shown]


def test_an_exported_list_imports_back() -> None:
    text = write_table(["number", "name"], [["+12125550100", "=1+1"]])
    parsed = parse_contacts(text.encode())
    assert parsed.contacts[0].number == "+12125550100"
    assert parsed.contacts[0].data == {"name": "'=1+1"}


# -- properties ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    parsed = parse_contacts(data)
    lines = data.count(b"\n") + data.count(b"\r") + 1
    assert all(1 <= p.line <= lines + 1 for p in parsed.problems)
    parse_dnc(data)


_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=12)
_number = st.one_of(
    st.integers(2012000000, 9899999999).map(str),
    st.integers(2012000000, 9899999999).map(lambda n: f"+1 {n}"),
    _cell,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_number, _cell, _cell), max_size=25),
       st.sampled_from([",", ";", "\t"]))
def test_every_record_is_imported_merged_or_reported(rows: list[tuple[str, str, str]],
                                                     delimiter: str) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["number", "name", "note"])
    starts = []
    for row in rows:
        # lines as the reader counts them: \r, \n and \r\n each end one
        starts.append(len(io.StringIO(out.getvalue(), newline="").readlines()) + 1)
        writer.writerow(row)
    parsed = parse_contacts(out.getvalue().encode("utf-8"))
    table = read_table(out.getvalue().encode("utf-8"))
    records = {line for line, _ in table.rows}
    imported = {c.line for c in parsed.contacts}
    reported = {p.line for p in parsed.problems}
    merged = set(parsed.merged)
    assert imported | merged | reported == records
    assert not (imported & reported) and not (merged & reported)
    assert records <= set(starts)
    # a record whose cells are all blank is the only kind skipped without a word
    for line, row in zip(starts, rows, strict=True):
        if line not in records:
            assert all(not cell.strip() for cell in row)
