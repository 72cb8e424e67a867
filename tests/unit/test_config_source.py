"""The YAML source layer: strict scalars, positions, and errors located as file:line:col."""

from __future__ import annotations

import math
from pathlib import Path
from textwrap import dedent

import pytest

from callcenter.config import source
from callcenter.config.errors import ConfigError, ConfigErrors, format_path
from callcenter.config.source import Position, load_dir, load_file


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str | bytes) -> tuple[object, source.SourceMap]:
    return load_file(write(tmp_path, "c.yaml", text))


def errors_of(call, *args: object) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        call(*args)
    return [str(error) for error in caught.value.errors]


def text_errors(tmp_path: Path, text: str | bytes) -> list[str]:
    path = write(tmp_path, "c.yaml", text)
    return [line.replace(f"{tmp_path}/", "") for line in errors_of(load_file, path)]


# -- errors.py ---------------------------------------------------------------------------------


def test_config_error_str_with_and_without_path() -> None:
    error = ConfigError(
        "config/queues.yaml", 14, 9, "queues.sales.skills[0]", "unknown skill 'frnch'"
    )
    assert (
        str(error)
        == "config/queues.yaml:14:9: queues.sales.skills[0]: unknown skill 'frnch'"
    )
    assert (
        str(ConfigError("config/a.yaml", 3, 1, "", "bad")) == "config/a.yaml:3:1: bad"
    )
    assert str(ConfigError("config", 0, 0, "", "config directory does not exist")) == (
        "config: config directory does not exist"
    )


def test_config_errors_sorted_deduplicated_one_per_line() -> None:
    late = ConfigError("b.yaml", 1, 1, "", "late")
    early = ConfigError("a.yaml", 9, 2, "x", "early")
    errors = ConfigErrors([late, early, late])
    assert errors.errors == [early, late]
    assert str(errors) == "a.yaml:9:2: x: early\nb.yaml:1:1: late"


def test_config_errors_needs_an_error() -> None:
    with pytest.raises(ValueError):
        ConfigErrors([])


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("queues", "sales", "skills", 0), "queues.sales.skills[0]"),
        (("menus", "main", "options", "1"), "menus.main.options.1"),
        (("menus", "main", "options", "#"), "menus.main.options.#"),
        ((0, "name"), "[0].name"),
        (("lookups", "a.b", "x y"), 'lookups["a.b"]["x y"]'),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


# -- scalars and keys ------------------------------------------------------------------------


def test_only_true_and_false_are_booleans(tmp_path: Path) -> None:
    data, _ = load_text(
        tmp_path,
        """\
        a: [true, True, TRUE, false, False, FALSE]
        b: [yes, no, NO, on, off, y, n, Yes, OFF]
        """,
    )
    assert data == {
        "a": [True, True, True, False, False, False],
        "b": ["yes", "no", "NO", "on", "off", "y", "n", "Yes", "OFF"],
    }


def test_numbers_follow_yaml_1_2_core_but_dial_strings_stay_strings(
    tmp_path: Path,
) -> None:
    data, _ = load_text(
        tmp_path,
        """\
        int: 42
        negative: -5
        zero: 0
        octal: 0o17
        hex: 0x1F
        float: 1.5
        exp: 1e3
        inf: -.inf
        leading_zero: 0777
        did: 0800123456
        e164: +4930123456
        sexagesimal: 1:30
        underscores: 1_000
        octal_1_1: 017x
        """,
    )
    assert data == {
        "int": 42,
        "negative": -5,
        "zero": 0,
        "octal": 15,
        "hex": 31,
        "float": 1.5,
        "exp": 1000.0,
        "inf": -math.inf,
        "leading_zero": "0777",
        "did": "0800123456",
        "e164": "+4930123456",
        "sexagesimal": "1:30",
        "underscores": "1_000",
        "octal_1_1": "017x",
    }
    assert isinstance(data["int"], int) and isinstance(data["exp"], float)


def test_nan_nulls_dates_and_quoted_values(tmp_path: Path) -> None:
    data, _ = load_text(
        tmp_path,
        """\
        nan: .NaN
        nulls: [~, null, Null, NULL, ]
        empty:
        date: 2026-12-25
        time: 2026-12-25T10:00:00
        quoted: ["1", 'true', "null"]
        tagged: !!str 123
        """,
    )
    assert math.isnan(data["nan"])
    assert data["nulls"] == [None, None, None, None]
    assert data["empty"] is None
    assert data["date"] == "2026-12-25"
    assert data["time"] == "2026-12-25T10:00:00"
    assert data["quoted"] == ["1", "true", "null"]
    assert data["tagged"] == "123"


def test_mapping_keys_are_the_source_text(tmp_path: Path) -> None:
    data, _ = load_text(
        tmp_path,
        """\
        1: one
        "2": two
        '#': hash
        "*": star
        true: yes
        0x1: hex
        ~: tilde
        """,
    )
    assert data == {
        "1": "one",
        "2": "two",
        "#": "hash",
        "*": "star",
        "true": "yes",
        "0x1": "hex",
        "~": "tilde",
    }


def test_same_key_written_two_ways_is_a_duplicate(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "1: a\n'1': b\n") == [
        "c.yaml:2:1: duplicate key '1' (first defined at line 1)"
    ]


def test_duplicate_key_located_at_second_key(tmp_path: Path) -> None:
    errors = text_errors(
        tmp_path,
        """\
        queues:
          sales:
            priority: 1
            skills: []
            priority: 2
        """,
    )
    assert errors == [
        "c.yaml:5:5: queues.sales: duplicate key 'priority' (first defined at line 3)"
    ]


def test_all_duplicates_in_a_file_are_reported(tmp_path: Path) -> None:
    errors = text_errors(tmp_path, "a: 1\nb: {x: 1, x: 2}\na: 3\n")
    assert errors == [
        "c.yaml:2:11: b: duplicate key 'x' (first defined at line 2)",
        "c.yaml:3:1: duplicate key 'a' (first defined at line 1)",
    ]


def test_complex_key_is_an_error(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "? [a, b]\n: 1\n") == [
        "c.yaml:1:3: a mapping key must be a plain value, not a mapping or list"
    ]


def test_tags_other_than_str_are_rejected(tmp_path: Path) -> None:
    assert text_errors(
        tmp_path, "a: !!int 3\nb: !!python/name:os.system x\nc: !custom [1]\n"
    ) == [
        "c.yaml:1:4: a: unsupported tag !!int (only !!str is allowed)",
        "c.yaml:2:4: b: unsupported tag !!python/name:os.system (only !!str is allowed)",
        "c.yaml:3:4: c: unsupported tag !custom on a list",
    ]


# -- anchors, aliases, merge keys ------------------------------------------------------------


def test_aliases_copy_values(tmp_path: Path) -> None:
    data, smap = load_text(
        tmp_path,
        """\
        defaults: &skills [english, french]
        queues:
          sales: {skills: *skills}
        """,
    )
    assert data["queues"]["sales"]["skills"] == ["english", "french"]
    assert data["queues"]["sales"]["skills"] is not data["defaults"]
    # A value reached through an alias is located where the anchor defines it.
    assert smap.locate(("queues", "sales", "skills", 1)) == (
        str(tmp_path / "c.yaml"),
        1,
        29,
    )


def test_merge_key_written_keys_win(tmp_path: Path) -> None:
    data, smap = load_text(
        tmp_path,
        """\
        base: &base
          timeout: 30
          priority: 1
        extra: &extra
          priority: 2
          retry: 5
        queues:
          sales:
            <<: [*base, *extra]
            priority: 9
        """,
    )
    assert data["queues"]["sales"] == {"timeout": 30, "retry": 5, "priority": 9}
    file = str(tmp_path / "c.yaml")
    assert smap.locate(("queues", "sales", "timeout")) == (file, 2, 12)
    assert smap.locate_key(("queues", "sales", "retry")) == (file, 6, 3)
    assert smap.locate(("queues", "sales", "priority")) == (file, 10, 15)


def test_quoted_merge_key_is_an_ordinary_key(tmp_path: Path) -> None:
    data, _ = load_text(tmp_path, "'<<': x\n")
    assert data == {"<<": "x"}


def test_merge_of_a_scalar_is_an_error(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "a:\n  <<: 5\n") == [
        "c.yaml:2:7: a: merge key '<<' takes a mapping or a list of mappings"
    ]


def test_recursive_alias_is_an_error(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "a: &a [1, *a]\n") == [
        "c.yaml:1:4: a[1]: alias refers to the node that contains it (recursive alias)"
    ]
    assert text_errors(tmp_path, "a: &a {x: 1, <<: *a}\n") == [
        "c.yaml:1:4: a: merge key '<<' refers to the mapping that contains it"
    ]


def test_alias_bomb_is_stopped(tmp_path: Path) -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    errors = text_errors(tmp_path, "\n".join(lines) + "\n")
    assert len(errors) == 1
    assert (
        "aliases expand to more than 100000 values ('billion laughs' document?)"
        in errors[0]
    )


def test_merge_key_bomb_is_stopped(tmp_path: Path) -> None:
    lines = ["m0: &m0 {k: 1}"]
    lines += [
        f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}, *m{i - 1}]}}" for i in range(1, 30)
    ]
    errors = text_errors(tmp_path, "\n".join(lines) + "\n")
    assert len(errors) == 1 and "billion laughs" in errors[0]


def test_aliases_within_the_limit_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "MAX_ALIAS_NODES", 3)
    data, _ = load_text(tmp_path, "a: &a [1, 2]\nb: *a\n")
    assert data == {"a": [1, 2], "b": [1, 2]}
    assert (
        "aliases expand to more than 3 values"
        in text_errors(tmp_path, "a: &a [1, 2]\nb: *a\nc: *a\n")[0]
    )


# -- syntax and encoding errors --------------------------------------------------------------


def test_syntax_error_is_located(tmp_path: Path) -> None:
    errors = text_errors(
        tmp_path,
        """\
        menus:
          main:
            timeout: 4
           prompts: [x]
        """,
    )
    assert errors == [
        (
            "c.yaml:4:4: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block mapping started at line 2, column 3)"
        )
    ]


def test_unclosed_flow_sequence(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "skills: [a, b\nqueues: {}\n") == [
        (
            "c.yaml:2:7: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence started at line 1, column 9)"
        )
    ]


def test_tab_indentation(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "menus:\n\tmain: {}\n") == [
        "c.yaml:2:1: tab character where YAML expects indentation or a value; indent with spaces"
    ]


def test_unquoted_colon_in_value(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "description: Sales: press 1\n") == [
        "c.yaml:1:19: mapping values are not allowed here (quote a value that contains ': ')"
    ]


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "a: 1\n---\nb: 2\n") == [
        (
            "c.yaml:2:1: expected a single document in the stream at line 1, column 1, "
            "but found another document"
        )
    ]


def test_non_utf8_bytes_are_located(tmp_path: Path) -> None:
    assert text_errors(
        tmp_path, "menus:\n  main: {description: Caf\xe9}\n".encode("latin-1")
    ) == ["c.yaml:2:26: invalid UTF-8 byte 0xe9; save the file as UTF-8"]


def test_column_after_multibyte_characters_counts_characters(tmp_path: Path) -> None:
    raw = "a: café ".encode() + b"\xff\n"
    assert text_errors(tmp_path, raw) == [
        "c.yaml:1:9: invalid UTF-8 byte 0xff; save the file as UTF-8"
    ]


def test_control_character(tmp_path: Path) -> None:
    assert text_errors(tmp_path, "a: 1\nb: x\x07\n") == [
        "c.yaml:2:5: character U+0007 is not allowed in YAML"
    ]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    data, _ = load_text(tmp_path, "\ufeffa: é\n".encode("utf-8"))
    assert data == {"a": "é"}


def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    # located where libyaml gives up (1000 levels), and at once: no minutes-long fallback
    assert text_errors(tmp_path, "[" * 50_000) == ["c.yaml:1:1001: YAML is nested too deeply"]


def test_file_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_FILE_BYTES", 10)
    assert text_errors(tmp_path, "a: 12345678901\n") == [
        "c.yaml: file is 15 bytes; the limit is 10"
    ]


def test_missing_file(tmp_path: Path) -> None:
    assert errors_of(load_file, tmp_path / "nope.yaml") == [
        f"{tmp_path}/nope.yaml: file does not exist"
    ]


def test_empty_file_loads_as_none(tmp_path: Path) -> None:
    data, smap = load_text(tmp_path, "# only a comment\n")
    assert data is None
    assert smap.locate(("anything",)) == (str(tmp_path / "c.yaml"), 1, 1)


# -- source map ------------------------------------------------------------------------------


def test_source_map_positions(tmp_path: Path) -> None:
    _, smap = load_text(
        tmp_path,
        """\
        queues:
          sales:
            skills: [english, frnch]
            fallback:
              voicemail: general
        agents:
          - name: alice
        """,
    )
    file = str(tmp_path / "c.yaml")
    assert smap.locate(()) == (file, 1, 1)
    assert smap.locate(("queues", "sales", "skills", 1)) == (file, 3, 23)
    assert smap.locate(("queues", "sales", "skills")) == (file, 3, 13)
    assert smap.locate_key(("queues", "sales", "skills")) == (file, 3, 5)
    assert smap.locate(("queues", "sales", "fallback", "voicemail")) == (file, 5, 18)
    assert smap.locate(("agents", 0)) == (file, 7, 5)
    assert smap.locate(("agents", 0, "name")) == (file, 7, 11)


def test_locate_falls_back_to_deepest_known_ancestor(tmp_path: Path) -> None:
    _, smap = load_text(tmp_path, "queues:\n  sales: {skills: [a]}\n")
    file = str(tmp_path / "c.yaml")
    assert smap.locate(("queues", "sales", "name")) == (file, 2, 10)
    assert smap.locate(("queues", "sales", "skills", 5, "x")) == (file, 2, 19)
    # A list item has no key: locate_key gives the item itself.
    assert smap.locate_key(("queues", "sales", "skills", 0)) == (file, 2, 20)
    assert smap.locate_key(("queues", "nope")) == (file, 2, 3)


def test_position_str() -> None:
    assert str(Position("a.yaml", 3, 7)) == "a.yaml:3:7"
    assert str(Position("config", 0, 0)) == "config"


# -- directories -----------------------------------------------------------------------------


def test_load_dir_merges_sections_split_over_files(tmp_path: Path) -> None:
    write(
        tmp_path, "a_menus.yaml", "menus:\n  main:\n    options: {1: {queue: sales}}\n"
    )
    write(
        tmp_path,
        "b_more.yml",
        "menus:\n  other:\n    timeout: 4\nqueues:\n  sales: {}\n",
    )
    data, smap = load_dir(tmp_path)
    assert data == {
        "menus": {
            "main": {"options": {"1": {"queue": "sales"}}},
            "other": {"timeout": 4},
        },
        "queues": {"sales": {}},
    }
    assert smap.locate(("menus", "main", "options", "1")) == (
        str(tmp_path / "a_menus.yaml"),
        3,
        18,
    )
    assert smap.locate(("menus", "other", "timeout")) == (
        str(tmp_path / "b_more.yml"),
        3,
        14,
    )
    assert smap.locate_key(("queues", "sales")) == (str(tmp_path / "b_more.yml"), 5, 3)
    # The section itself is located at its first definition; the root is the directory.
    assert smap.locate_key(("menus",)) == (str(tmp_path / "a_menus.yaml"), 1, 1)
    assert smap.locate(()) == (str(tmp_path), 0, 0)


def test_load_dir_duplicate_entry_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "menus:\n  main: {timeout: 1}\n")
    write(tmp_path, "b.yaml", "queues: {}\nmenus:\n  other: {}\n  main: {timeout: 2}\n")
    assert errors_of(load_dir, tmp_path) == [
        f"{tmp_path}/b.yaml:4:3: menus.main: duplicate entry 'main' (first defined at {tmp_path}/a.yaml:2:3)"
    ]


def test_load_dir_section_that_is_not_a_mapping_cannot_be_split(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "skills: [english]\n")
    write(tmp_path, "b.yaml", "skills: [french]\n")
    assert errors_of(load_dir, tmp_path) == [
        (
            f"{tmp_path}/b.yaml:1:1: skills: section 'skills' is also defined at "
            f"{tmp_path}/a.yaml:1:1; only sections that are mappings can be split across files"
        )
    ]


def test_load_dir_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "- menus\n- queues\n")
    write(tmp_path, "b.yaml", "just text\n")
    expected = "the top level of a config file must be a mapping of section names (menus:, queues:, ...)"
    assert errors_of(load_dir, tmp_path) == [
        f"{tmp_path}/a.yaml:1:1: {expected}, not a list",
        f"{tmp_path}/b.yaml:1:1: {expected}, not 'just text'",
    ]


def test_load_dir_collects_errors_from_every_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "menus: {x: 1, x: 2}\n")
    write(tmp_path, "b.yaml", "queues: [\n")
    write(tmp_path, "c.yaml", b"flows: \xff\n")
    errors = errors_of(load_dir, tmp_path)
    assert [error.split(": ")[0] for error in errors] == [
        f"{tmp_path}/a.yaml:1:15",
        f"{tmp_path}/b.yaml:2:1",
        f"{tmp_path}/c.yaml:1:8",
    ]


def test_load_dir_ignores_other_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "menus: {main: {}}\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, ".#a.yaml", "broken: [\n")
    write(tmp_path, "notes.txt", "broken: [\n")
    (tmp_path / "sub.yaml").mkdir()
    write(tmp_path / "sub.yaml", "x.yaml", "broken: [\n")
    data, _ = load_dir(tmp_path)
    assert data == {"menus": {"main": {}}}


def test_load_dir_without_config_files(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "hi")
    assert errors_of(load_dir, tmp_path) == [
        f"{tmp_path}: no *.yaml or *.yml files in config directory"
    ]


def test_load_dir_missing_or_not_a_directory(tmp_path: Path) -> None:
    assert errors_of(load_dir, tmp_path / "nope") == [
        f"{tmp_path}/nope: config directory does not exist"
    ]
    file = write(tmp_path, "a.yaml", "a: 1\n")
    assert errors_of(load_dir, file) == [f"{file}: config directory is not a directory"]


def test_duplicate_key_in_a_merged_anchor_is_reported_once(tmp_path: Path) -> None:
    errors = text_errors(tmp_path, "base: &b {x: 1, x: 2}\na: {<<: *b}\nc: {<<: *b}\n")
    assert errors == ["c.yaml:1:17: base: duplicate key 'x' (first defined at line 1)"]


def test_libyaml_and_pure_python_composers_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = """\
        é: {ü: [ß, "x"], k: &a 1}
        b: *a
        c:
          - 'q'
          - |
            text
          -
        d: {<<: {m: 1}, n: 0x1F}
        """
    fast = load_text(tmp_path, text)
    monkeypatch.setattr(source, "_FAST_LOADER", None)
    slow = load_text(tmp_path, text)
    assert fast[0] == slow[0]
    assert fast[1]._values == slow[1]._values
    assert fast[1]._keys == slow[1]._keys
