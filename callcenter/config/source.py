"""Strict YAML loading: plain data plus the source position of every value.

Admins write call flows in YAML; this module turns the files into plain Python data
(``dict``/``list``/``str``/``int``/``float``/``bool``/``None``) and a :class:`SourceMap`, so that
later stages (pydantic models, cross-reference checks) can report errors as ``file:line:col``.
Nothing here knows what a menu or a queue is.

Scalar rules (YAML 1.2 core schema, tightened for telephony):

* booleans are only ``true``/``True``/``TRUE``/``false``/``False``/``FALSE``; ``yes``, ``no``,
  ``on``, ``off``, ``y``, ``n`` stay strings (no "Norway problem");
* ``null``/``Null``/``NULL``/``~`` and an empty value are ``None``;
* integers are ``[-+]?[0-9]+``, ``0o17`` (octal) and ``0x1F`` (hex). Deviation from 1.2: a
  decimal with a leading zero (``0800123456``, ``007``) or an explicit ``+`` (``+4930123456``)
  stays a string, because in a contact center those are dial strings, extensions and PINs, and
  turning them into ``int`` would silently drop the zero or the plus;
* floats per 1.2 core (``1.5``, ``.5``, ``1e3``, ``.inf``, ``.nan``);
* everything else is a string: ``1:30`` (no sexagesimal), ``2026-12-25`` (no timestamps; the
  models parse dates), ``1_000``;
* an integer longer than :data:`MAX_NUMBER_CHARS` is an error: no config value is that large,
  and Python refuses to print integers past 4300 digits, so one would crash every message
  that quotes it;
* a string holding a lone UTF-16 surrogate (``"\\ud800"``, only possible through a double-quoted
  escape) is an error: it is no text, and printing it fails.

Mapping keys are always strings: the scalar's text as written, after YAML unquoting. ``1: x``,
``"1": x`` and ``'1': x`` all give the key ``"1"``; ``"#": x`` gives ``"#"``; ``true: x`` gives
``"true"``. A key that is itself a mapping or list is an error.

Only the ``!!str`` explicit tag (and the default ``!!map``/``!!seq``) is accepted; other tags
are errors, so no document can build arbitrary objects or depend on PyYAML's 1.1 typing.

Anchors and aliases are allowed, and so is the merge key ``<<`` (``<<: *defaults`` or
``<<: [*a, *b]``): keys written in the mapping win over merged ones, earlier merge sources win
over later ones. Values taken from an alias or a merge are located where the anchor defines
them. Alias expansion is capped (:data:`MAX_ALIAS_NODES`) against "billion laughs" documents,
and every file is capped at :data:`MAX_FILE_BYTES`.

Only PyYAML's composer is used (the node graph, with positions); construction is ours. The
libyaml composer is used when installed, as it is five times faster and gives the same nodes
and positions; a document it rejects is parsed again by the pure-Python parser, so error
messages are the same on every installation.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callcenter.config.errors import ConfigError, ConfigErrors, format_path

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_FILE_BYTES",
    "MAX_NUMBER_CHARS",
    "ConfigPath",
    "Position",
    "SourceMap",
    "load_dir",
    "load_dir_partial",
    "load_file",
]

ConfigPath: TypeAlias = tuple[str | int, ...]
"""A path into loaded data: mapping keys (always ``str``) and list indexes (``int``)."""

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Largest accepted config file; call-flow YAML is kilobytes, anything bigger is a mistake."""

MAX_ALIAS_NODES = 100_000
"""Most values a file may produce through aliases and merges, beyond those written out."""

MAX_NUMBER_CHARS = 100
"""Longest integer accepted, in characters; config numbers are priorities, ports, timeouts."""

# An untagged plain scalar, typed by _plain_value().
_PLAIN_TAG = "tag:callcenter,2026:plain"
_STR_TAG = "tag:yaml.org,2002:str"  # quoted and block scalars, and explicit !!str
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_OCTAL_OR_HEX = re.compile(r"0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Position(NamedTuple):
    """Where a node starts in its file; ``line``/``column`` are 1-based, 0 for a whole file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return self.file if self.line == 0 else f"{self.file}:{self.line}:{self.column}"


class SourceMap:
    """Source positions of loaded data, addressed by :data:`ConfigPath`.

    Every mapping value and sequence item has the position of its value node; every mapping
    entry also has the position of its key. Lookups fall back to the deepest known ancestor,
    because validation errors can name paths that are not in the data (a missing key).
    """

    __slots__ = ("_keys", "_values")

    def __init__(self, root: Position) -> None:
        self._values: dict[ConfigPath, Position] = {(): root}
        self._keys: dict[ConfigPath, Position] = {}

    def locate(self, path: ConfigPath) -> Position:
        """Position of the value at ``path``, or of its deepest ancestor present in the data."""
        path = tuple(path)
        for depth in range(len(path), 0, -1):
            position = self._values.get(path[:depth])
            if position is not None:
                return position
        return self._values[()]

    def locate_key(self, path: ConfigPath) -> Position:
        """Position of the mapping key at ``path``; :meth:`locate` when ``path`` is no key."""
        return self._keys.get(tuple(path)) or self.locate(path)

    def _add(
        self, path: ConfigPath, value: Position, key: Position | None = None
    ) -> None:
        self._values[path] = value
        if key is not None:
            self._keys[path] = key

    def _absorb(self, other: SourceMap, skip: set[ConfigPath]) -> None:
        """Take ``other``'s positions, keeping ours where both know a path (first file wins).

        Paths under a prefix in ``skip`` (entries dropped as duplicates) and the other file's
        root are left out.
        """
        for table, other_table in (
            (self._values, other._values),
            (self._keys, other._keys),
        ):
            for path, position in other_table.items():
                if path and path[:1] not in skip and path[:2] not in skip:
                    table.setdefault(path, position)


class _PlainScalars:
    """Loader mixin giving every untagged plain scalar :data:`_PLAIN_TAG`.

    PyYAML's resolver implements YAML 1.1 (``yes`` is true, ``1:30`` is 5400); tagging plain
    scalars ourselves lets :func:`_plain_value` apply the rules in the module docstring.
    """

    def resolve(
        self, kind: type[Node], value: str | None, implicit: tuple[bool, bool]
    ) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


class _Loader(_PlainScalars, yaml.SafeLoader):
    """The pure-Python composer: always available, and the one whose errors are reported."""


_FAST_LOADER: type[_PlainScalars] | None = (
    type("_FastLoader", (_PlainScalars, yaml.CSafeLoader), {})
    if getattr(yaml, "__with_libyaml__", False)
    else None
)


def _compose(text: str) -> Node | None:
    """The document's node graph, ``None`` for an empty document.

    libyaml first when installed; if it rejects the text, the pure-Python parser runs again
    and raises its own error, so messages do not depend on the installation.
    """
    if _FAST_LOADER is not None:
        fast = _FAST_LOADER(text)
        try:
            return fast.get_single_node()
        except yaml.MarkedYAMLError as exc:
            if "nesting depth" in (exc.problem or ""):
                # libyaml stops at 1000 levels; the pure-Python parser would take
                # minutes (quadratic in depth) to fail on the same document.
                raise _TooDeep(exc.problem_mark) from None
            # other errors are reported by the pure-Python parser below
        except yaml.YAMLError:
            pass
        except RecursionError:
            raise _TooDeep(None) from None
        finally:
            fast.dispose()
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _TooDeep(Exception):
    """Aborts parsing a document nested deeper than the parsers can follow."""

    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__()
        self.mark = mark


class _TooManyAliases(Exception):
    """Aborts construction of a file whose aliases expand past :data:`MAX_ALIAS_NODES`."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node


def _plain_value(text: str) -> Any:
    """Type an untagged plain scalar by the rules in the module docstring."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    if _DECIMAL.fullmatch(text):
        digits = text.lstrip("+-")
        if text.startswith("+") or (len(digits) > 1 and digits.startswith("0")):
            return text
        return int(text)
    if _OCTAL_OR_HEX.fullmatch(text):
        return int(text, 0)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


class _Builder:
    """Turns one file's node graph into plain data, recording positions and collecting errors.

    The composer hands back an anchored node once per alias, so a node seen a second time is
    an alias expansion; those are counted against :data:`MAX_ALIAS_NODES`, and a node met
    again while still being built is a recursive alias.
    """

    def __init__(self, file: str, smap: SourceMap, errors: list[ConfigError]) -> None:
        self._file = file
        self._smap = smap
        self._errors = errors
        self._seen: set[int] = set()
        self._building: set[int] = set()
        self._duplicates: set[int] = (
            set()
        )  # key nodes reported, once even if merged often
        self._expanded = 0

    def position(self, node: Node) -> Position:
        return Position(
            self._file, node.start_mark.line + 1, node.start_mark.column + 1
        )

    def error(self, node: Node, path: ConfigPath, message: str) -> None:
        line, column = self.position(node)[1:]
        self._errors.append(
            ConfigError(self._file, line, column, format_path(path), message)
        )

    def build(self, node: Node, path: ConfigPath) -> Any:
        if id(node) in self._building:
            self.error(
                node,
                path,
                "alias refers to the node that contains it (recursive alias)",
            )
            return None
        if id(node) in self._seen:
            self._charge(node, 1)
        self._seen.add(id(node))
        self._building.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node, path)
        finally:
            self._building.discard(id(node))

    def _charge(self, node: Node, values: int) -> None:
        """Count ``values`` produced again through an alias or merge of ``node``."""
        self._expanded += values
        if self._expanded > MAX_ALIAS_NODES:
            raise _TooManyAliases(node)

    def _scalar(self, node: ScalarNode, path: ConfigPath) -> Any:
        self._check_text(node, path)
        if node.tag == _PLAIN_TAG:
            if len(node.value) > MAX_NUMBER_CHARS and (
                _DECIMAL.fullmatch(node.value) or _OCTAL_OR_HEX.fullmatch(node.value)
            ):
                self.error(
                    node,
                    path,
                    f"number of {len(node.value)} characters is too large "
                    f"(at most {MAX_NUMBER_CHARS}); quote it if it is text",
                )
                return node.value
            return _plain_value(node.value)
        if node.tag != _STR_TAG:
            self.error(
                node,
                path,
                f"unsupported tag {_short_tag(node.tag)} (only !!str is allowed)",
            )
        return node.value

    def _check_text(self, node: ScalarNode, path: ConfigPath) -> None:
        """Report a lone surrogate (from a ``"\\udXXX"`` escape): it is no text."""
        found = _SURROGATE.search(node.value)
        if found:
            self.error(
                node,
                path,
                f"invalid character U+{ord(found.group()):04X} (a lone UTF-16 surrogate; "
                "write the character itself or a \\U escape)",
            )

    def _sequence(self, node: SequenceNode, path: ConfigPath) -> list[Any]:
        if node.tag != _SEQ_TAG:
            self.error(node, path, f"unsupported tag {_short_tag(node.tag)} on a list")
        items = []
        for index, item in enumerate(node.value):
            self._smap._add((*path, index), self.position(item))
            items.append(self.build(item, (*path, index)))
        return items

    def _mapping(self, node: MappingNode, path: ConfigPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.error(
                node, path, f"unsupported tag {_short_tag(node.tag)} on a mapping"
            )
        result = {}
        for key, (key_node, value_node) in self._entries(node, path).items():
            self._smap._add(
                (*path, key), self.position(value_node), self.position(key_node)
            )
            result[key] = self.build(value_node, (*path, key))
        return result

    def _entries(
        self, node: MappingNode, path: ConfigPath
    ) -> dict[str, tuple[Node, Node]]:
        """The mapping's entries by key, merge keys applied, duplicates reported and dropped."""
        written: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if _is_merge_key(key_node):
                for source in self._merge_sources(value_node, path):
                    self._charge(source, len(source.value))
                    self._building.add(id(source))
                    try:
                        for key, entry in self._entries(source, path).items():
                            merged.setdefault(key, entry)
                    finally:
                        self._building.discard(id(source))
            elif not isinstance(key_node, ScalarNode):
                self.error(
                    key_node,
                    path,
                    "a mapping key must be a plain value, not a mapping or list",
                )
            elif key_node.value in written:
                if id(key_node) not in self._duplicates:
                    self._duplicates.add(id(key_node))
                    first = self.position(written[key_node.value][0])
                    self.error(
                        key_node,
                        path,
                        f"duplicate key {key_node.value!r} "
                        f"(first defined at line {first.line})",
                    )
            else:
                self._check_text(key_node, (*path, key_node.value))
                written[key_node.value] = (key_node, value_node)
        entries = {key: entry for key, entry in merged.items() if key not in written}
        entries.update(written)
        return entries

    def _merge_sources(self, node: Node, path: ConfigPath) -> list[MappingNode]:
        """The mappings a ``<<`` value names, in priority order; anything else is an error."""
        sources = []
        for source in node.value if isinstance(node, SequenceNode) else [node]:
            if not isinstance(source, MappingNode):
                self.error(
                    source, path, "merge key '<<' takes a mapping or a list of mappings"
                )
            elif id(source) in self._building:
                self.error(
                    source,
                    path,
                    "merge key '<<' refers to the mapping that contains it",
                )
            else:
                sources.append(source)
        return sources


def _short_tag(tag: str) -> str:
    """A tag as the admin wrote it: ``!!int`` rather than ``tag:yaml.org,2002:int``."""
    return tag.replace("tag:yaml.org,2002:", "!!", 1)


def _is_merge_key(node: Node) -> bool:
    """An unquoted ``<<`` key; a quoted ``"<<"`` is an ordinary key."""
    return (
        isinstance(node, ScalarNode) and node.tag == _PLAIN_TAG and node.value == "<<"
    )


def _text_position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` in ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    """PyYAML's context/problem pair as one sentence, with positions 1-based."""
    problem = error.problem or "invalid YAML"
    if "'\\t'" in problem:
        return "tab character where YAML expects indentation or a value; indent with spaces"
    if problem == "mapping values are not allowed here":
        return f"{problem} (quote a value that contains ': ')"
    if not error.context:
        return problem
    where = ""
    if error.context_mark is not None:
        where = f" at line {error.context_mark.line + 1}, column {error.context_mark.column + 1}"
    if error.context.startswith("while "):
        return f"{problem} ({error.context} started{where})"
    return f"{error.context}{where}, {problem}"


def _parse(
    file: str, raw: bytes, errors: list[ConfigError]
) -> tuple[Any, SourceMap] | None:
    """Parse one file's bytes; ``None`` when it is unusable (errors already appended).

    Recoverable problems (duplicate keys, bad tags) are appended to ``errors`` and the data
    is still returned, so the caller can go on looking for more problems.
    """

    def fail(line: int, column: int, message: str) -> None:
        errors.append(ConfigError(file, line, column, "", message))

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8")) + 1
        fail(
            line,
            column,
            f"invalid UTF-8 byte 0x{raw[exc.start]:02x}; save the file as UTF-8",
        )
        return None
    smap = SourceMap(Position(file, 1, 1))
    try:
        root = _compose(text)
        if root is None:
            return None, smap
        smap._add(
            (), Position(file, root.start_mark.line + 1, root.start_mark.column + 1)
        )
        return _Builder(file, smap, errors).build(root, ()), smap
    except yaml.reader.ReaderError as exc:
        # Given a str, PyYAML reports the character as a code point.
        fail(
            *_text_position(text, exc.position),
            f"character U+{exc.character:04X} is not allowed in YAML",
        )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        fail(line, column, _syntax_message(exc))
    except _TooManyAliases as exc:
        mark = exc.node.start_mark
        fail(
            mark.line + 1,
            mark.column + 1,
            f"aliases expand to more than {MAX_ALIAS_NODES} values ('billion laughs' document?)",
        )
    except _TooDeep as exc:
        mark = exc.mark
        fail(*((mark.line + 1, mark.column + 1) if mark else (0, 0)), "YAML is nested too deeply")
    except RecursionError:
        fail(0, 0, "YAML is nested too deeply")
    return None


def _error_at(position: Position, path: ConfigPath, message: str) -> ConfigError:
    return ConfigError(*position, format_path(path), message)


def _whole(file: str, message: str) -> ConfigError:
    """An error about a file or directory as a whole, so without a position."""
    return ConfigError(file, 0, 0, "", message)


def _read(path: Path, errors: list[ConfigError]) -> tuple[Any, SourceMap] | None:
    """Read and parse one file, turning I/O problems into errors on the file as a whole."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            errors.append(
                _whole(file, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            )
            return None
        raw = path.read_bytes()
    except FileNotFoundError:
        errors.append(_whole(file, "file does not exist"))
        return None
    except OSError as exc:
        errors.append(_whole(file, f"cannot read file: {exc.strerror or exc}"))
        return None
    return _parse(file, raw, errors)


def load_file(path: str | Path) -> tuple[Any, SourceMap]:
    """Load one YAML file into plain data and its :class:`SourceMap`.

    An empty file (or one with only comments) loads as ``None``. Every problem found is
    raised together as :class:`ConfigErrors`.
    """
    errors: list[ConfigError] = []
    loaded = _read(Path(path), errors)
    if errors or loaded is None:
        raise ConfigErrors(errors)
    return loaded


def _config_files(directory: Path) -> list[Path]:
    """``*.yaml``/``*.yml`` files directly in ``directory``, by name; hidden files skipped."""
    return sorted(
        (
            path
            for path in directory.iterdir()
            if path.suffix in (".yaml", ".yml")
            and not path.name.startswith(".")
            and path.is_file()
        ),
        key=lambda path: path.name,
    )


def load_dir(directory: str | Path) -> tuple[dict[str, Any], SourceMap]:
    """Load every config file in ``directory`` and merge them into one mapping of sections.

    Each file's top level must be a mapping of section names (``menus:``, ``queues:`` ...) to
    values. Files are read in name order. A section that is a mapping may be split across
    files: its entries are merged, and an entry name defined in two files is an error at the
    second definition that names the first. Any other section may appear in only one file.
    Hidden files and subdirectories are ignored. All errors from all files are raised
    together as :class:`ConfigErrors`. Paths in the returned map are paths in the merged data,
    each pointing into the file that defined it; ``()`` is the directory itself.
    """
    errors: list[ConfigError] = []
    merged, smap, _ = load_dir_partial(directory, errors)
    if errors:
        raise ConfigErrors(errors)
    return merged, smap


def load_dir_partial(
    directory: str | Path, errors: list[ConfigError]
) -> tuple[dict[str, Any], SourceMap, bool]:
    """:func:`load_dir` that appends errors to ``errors`` instead of raising.

    Returns the data it could build and whether every file was parsed (a file
    with a syntax error contributes nothing). With duplicate keys or entries,
    the first definition is kept, so a caller can go on validating the rest and
    report every problem in one round.
    """
    directory = Path(directory)
    where = str(directory)
    smap = SourceMap(Position(where, 0, 0))
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        errors.append(_whole(where, f"config directory {problem}"))
        return {}, smap, False
    files = _config_files(directory)
    if not files:
        errors.append(_whole(where, "no *.yaml or *.yml files in config directory"))
        return {}, smap, False

    merged: dict[str, Any] = {}
    complete = True
    for path in files:
        loaded = _read(path, errors)
        if loaded is None:
            complete = False
            continue
        if loaded[0] is None:
            continue
        data, file_map = loaded
        if not isinstance(data, dict):
            got = "a list" if isinstance(data, list) else repr(data)
            message = (
                "the top level of a config file must be a mapping of section names "
                f"(menus:, queues:, ...), not {got}"
            )
            errors.append(_error_at(file_map.locate(()), (), message))
            complete = False
            continue
        skip = _merge_sections(merged, data, smap, file_map, errors)
        smap._absorb(file_map, skip)
    return merged, smap, complete


def _merge_sections(
    merged: dict[str, Any],
    data: dict[str, Any],
    smap: SourceMap,
    file_map: SourceMap,
    errors: list[ConfigError],
) -> set[ConfigPath]:
    """Merge one file's sections into ``merged``; return the paths dropped as duplicates."""
    skip: set[ConfigPath] = set()

    def duplicate(path: ConfigPath, message: str) -> None:
        errors.append(_error_at(file_map.locate_key(path), path, message))
        skip.add(path)

    for section, value in data.items():
        if section not in merged:
            merged[section] = value
        elif isinstance(merged[section], dict) and isinstance(value, dict):
            for name, entry in value.items():
                if name in merged[section]:
                    first = smap.locate_key((section, name))
                    duplicate(
                        (section, name),
                        f"duplicate entry {name!r} (first defined at {first})",
                    )
                else:
                    merged[section][name] = entry
        else:
            first = smap.locate_key((section,))
            duplicate(
                (section,),
                f"section {section!r} is also defined at {first}; only sections that are "
                "mappings can be split across files",
            )
    return skip
