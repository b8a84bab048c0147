"""Reading scenario files: safe YAML with the line of every value, and ``extends:``.

A file is read as text (a regular file of bounded size, UTF-8), parsed with safe tags only and
YAML 1.2 numbers (``1:30`` is text, not the sexagesimal 90), refused if it is deeper, larger or more
self-referential than any scenario could be, and every value's path is mapped to its line.
Duplicate keys are issues, not silently "last one wins".  ``extends: base.yaml`` merges the file
over its base (mappings key by key, anything else replaces; ``null`` drops a key); the base must
lie in the scenario's folder tree (:mod:`.confinement`).  A reading or parsing error says what is
wrong and where, never what the file holds: the file may not be a scenario at all.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from simulator.scenario.confinement import confinement_problem, file_kind_problem, read_regular_file
from simulator.scenario.errors import NO_VALUE, Issue, PathT, ScenarioError, format_path
from simulator.scenario.locations import Loc
from simulator.scenario.schema import ScenarioSchema


class _KeyPreservingLoader(yaml.SafeLoader):
    """SafeLoader whose mapping keys stay the strings written (``off:`` is the key 'off')."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):  # [a, b]: or {a: 1}: - never a field name
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark)
            out[key_node.value] = self.construct_object(value_node, deep=deep)
        return out

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """An impossible date (2015-13-01) stays text, so validation can say where it is."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_KeyPreservingLoader.add_constructor("tag:yaml.org,2002:timestamp", _KeyPreservingLoader.construct_yaml_timestamp)
_SEXAGESIMAL = (r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+", r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*")
"""YAML 1.1's base-60 numbers (``1:30`` = 90), which YAML 1.2 dropped: a typo, never a scenario's value."""


def _without_sexagesimal(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """A number resolver's pattern without its base-60 branch (everything else read as before)."""
    text = pattern.pattern
    for branch in _SEXAGESIMAL:
        text = text.replace(branch, "")
    assert ":[0-5]" not in text, "PyYAML's number patterns changed; update _SEXAGESIMAL"
    return re.compile(text, pattern.flags)


_KeyPreservingLoader.yaml_implicit_resolvers = {
    first: [(tag, _without_sexagesimal(regexp) if tag.endswith((":int", ":float")) else regexp)
            for tag, regexp in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_KeyPreservingLoader.add_implicit_resolver(  # YAML 1.1 reads 1e6 (no dot) as text; analysts mean the number
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


MAX_FILE_BYTES = 1 << 20
"""Largest scenario file read (scenario files are a few kilobytes; this stops a wrong file early)."""
MAX_DEPTH = 40
"""Deepest nesting accepted (a scenario needs about 8 levels)."""
MAX_VALUES = 100_000
"""Most values a file may hold once YAML aliases are expanded (stops 'billion laughs' alias bombs)."""


class _TooBigError(Exception):
    """The YAML structure is deeper, larger or more self-referential than any scenario."""


def _walk_nodes(node: yaml.Node, path: PathT, file: str, marks: dict[PathT, Loc], issues: list[Issue],
                depth: int = 0, ancestors: frozenset[int] = frozenset(), count: list[int] | None = None) -> None:
    """Record the line of every value and report duplicate keys (before construction).

    Raises :class:`_TooBigError` for nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_VALUES`
    values after alias expansion, or an alias that contains itself.
    """
    count = [0] if count is None else count
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise _TooBigError(f"more than {MAX_VALUES:,} values once YAML aliases (*name) are expanded; "
                           "a scenario holds a few hundred")
    if depth > MAX_DEPTH:
        raise _TooBigError(f"nested more than {MAX_DEPTH} levels deep (line {node.start_mark.line + 1}); "
                           "a scenario needs about 8")
    if id(node) in ancestors:
        raise _TooBigError(f"a YAML alias refers to a value that contains it (line {node.start_mark.line + 1})")
    marks[path] = Loc(file, node.start_mark.line + 1)
    inner = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(Issue(file, line, format_path((*path, key)), NO_VALUE,
                                    f"duplicate key {key!r} (first given on line {seen[key]}); give each key once"))
            else:
                seen[key] = line
            _walk_nodes(value_node, (*path, key), file, marks, issues, depth + 1, inner, count)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_nodes(item, (*path, index), file, marks, issues, depth + 1, inner, count)


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the event stream, before the (recursive) composer."""
    loader = _KeyPreservingLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    where = f" (line {mark.line + 1})" if mark is not None else ""
                    raise _TooBigError(f"nested more than {MAX_DEPTH} levels deep{where}; "
                                       "a scenario needs about 8")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    """The file's text: at most :data:`MAX_FILE_BYTES`, UTF-8, no NUL bytes (else a ScenarioError)."""
    file = str(path)
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES + 1)
    except ValueError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, str(exc))]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError([Issue(file, None, "", NO_VALUE,
                                   f"file is larger than {MAX_FILE_BYTES // 2**20} MiB: not a scenario file "
                                   "(they are a few kilobytes); check the path")])
    if b"\0" in raw:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, "not a text file (it contains NUL bytes): "
                                   "a scenario is a YAML text file")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"not UTF-8 text (byte {exc.start}: "
                                   f"{exc.reason}); save the file as UTF-8")]) from None


def load_yaml(path: Path, issues: list[Issue] | None = None) -> tuple[Any, dict[PathT, Loc]]:
    """Parse one YAML file; return the data and the location of every value in it.

    Duplicate keys are appended to ``issues`` (the last value wins meanwhile, so validation can
    still report everything else); without ``issues`` they raise at once.
    """
    return parse_yaml(_read_text(path), str(path), issues)


def parse_yaml(text: str, file: str, issues: list[Issue] | None = None) -> tuple[Any, dict[PathT, Loc]]:
    """:func:`load_yaml` on text (also a ``--set`` value).

    Safe tags only, bounded depth and size; every failure is a ScenarioError.
    """
    loader: _KeyPreservingLoader | None = None
    try:
        _check_depth(text)
        loader = _KeyPreservingLoader(text)
        node = loader.get_single_node()
        if node is None:
            return {}, {(): Loc(file, 1)}
        marks: dict[PathT, Loc] = {}
        duplicates: list[Issue] = []
        _walk_nodes(node, (), file, marks, duplicates)
        if duplicates and issues is None:
            raise ScenarioError(duplicates)
        if issues is not None:
            issues += duplicates
        return loader.construct_document(node), marks
    except ScenarioError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(_unquoted(str(p)) for p in (exc.context, exc.problem) if p)
        raise ScenarioError([Issue(file, line, "", NO_VALUE, f"malformed YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"malformed YAML: {_unquoted(str(exc))}")]) from None
    except RecursionError:
        raise ScenarioError([Issue(file, None, "", NO_VALUE,
                                   f"nested too deeply (more than {MAX_DEPTH} levels); a scenario needs about 8")]) \
            from None
    except _TooBigError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"refused: {exc}")]) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer with thousands of digits
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"unreadable value: {_unquoted(str(exc))}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\n.*""", re.DOTALL)
_TAG = re.compile(r"""'(?:!|tag:yaml\.org,2002:)[A-Za-z0-9_./:!-]{0,40}'""")
"""A quoted YAML tag (``'!include'``, ``'tag:yaml.org,2002:python/object'``): a type name, kept in the message."""


def _unquoted(problem: str) -> str:
    """A parser's message without the text it quotes from the file (a character, an anchor, a line).

    The file may be anything but a scenario (a key file named by mistake or by a hostile ``extends:``);
    only a short YAML tag, the name of the refused type, is kept.
    """
    def keep_tags(match: re.Match[str]) -> str:
        return match.group(0) if _TAG.fullmatch(match.group(0)) else "(...)"

    return re.sub(r"\s+", " ", _QUOTED.sub(keep_tags, problem)).strip()


def _deep_merge(base: Any, child: Any, path: PathT, replaced: list[PathT]) -> Any:
    """Child over base: mappings merge key by key, anything else (lists too) replaces."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for key, value in child.items():
            if value is None:  # null: "not given" - drops what the base file set (e.g. one of its policies)
                out.pop(key, None)
                replaced.append((*path, key))
            else:
                out[key] = _deep_merge(base[key], value, (*path, key), replaced) if key in base else value
        return out
    replaced.append(path)
    return child


def is_under(path: PathT, prefix: PathT) -> bool:
    """Whether ``path`` is ``prefix`` or inside it."""
    return path[: len(prefix)] == prefix


def resolve_file(path: Path, issues: list[Issue], chain: tuple[Path, ...] = (), *,
                 allow_outside: bool = False, root: Path | None = None) -> tuple[dict[str, Any], dict[PathT, Loc]]:
    """A scenario file with its ``extends`` chain merged in, and the location of every value.

    ``chain`` holds the files that extend this one (to report circular extends); duplicate keys
    are appended to ``issues``.  Every base file must lie under ``root`` (default: this file's
    folder, symlinks resolved) unless ``allow_outside``.
    """
    root = path.resolve().parent if root is None else root
    data, marks = load_yaml(path, issues)
    if not isinstance(data, dict):  # not a scenario: say what it is, never what it holds
        raise ScenarioError([Issue(str(path), 1, "", NO_VALUE,
                                   f"a scenario must be a mapping (key: value lines), not {_kind(data)}")])
    _check_looks_like_a_scenario(path, data)
    if "extends" not in data:
        return data, marks
    extends = data.pop("extends")
    extends_loc = marks.get(("extends",), Loc(str(path), None))
    marks = {where: loc for where, loc in marks.items() if not is_under(where, ("extends",))}
    base_path = _base_file(extends, path, extends_loc, root, allow_outside)
    if base_path in chain or base_path == path.resolve():
        raise ScenarioError([Issue(extends_loc.file, extends_loc.line, "extends", extends,
                                   "circular extends: " + " -> ".join(map(str, (*chain, path, base_path))))])
    base, base_marks = resolve_file(base_path, issues, (*chain, path.resolve()), allow_outside=allow_outside, root=root)
    replaced: list[PathT] = []
    merged = _deep_merge(base, data, (), replaced)
    kept = {where: loc for where, loc in base_marks.items() if not any(is_under(where, gone) for gone in replaced)}
    kept.update(marks)
    return merged, kept


def _base_file(extends: Any, path: Path, where: Loc, root: Path, allow_outside: bool) -> Path:
    """The file ``extends`` names (resolved), checked: a path, inside ``root`` unless allowed, a regular file."""
    def refuse(message: str) -> ScenarioError:
        return ScenarioError([Issue(where.file, where.line, "extends", extends, message)])

    if not isinstance(extends, str) or not extends:
        raise refuse("must be the path of another scenario file, relative to this one")
    base_path = (path.parent / extends).resolve()
    problem = None if allow_outside else confinement_problem(extends, base_path, root)
    if problem is not None:
        raise refuse(problem)
    problem = file_kind_problem(base_path)
    if problem is not None:
        raise refuse(f"{problem}: {base_path}")
    return base_path


def _check_looks_like_a_scenario(path: Path, data: dict[Any, Any]) -> None:
    """Refuse a mapping none of whose top-level keys is (or is a typo of) a scenario field, without quoting it.

    ``/etc/shadow`` lines end in ``:`` and read as a mapping of keys; reported as "unknown field", each
    would be printed.  A real scenario, even one with typos, names at least one field.
    """
    known = [*ScenarioSchema.model_fields, "extends"]
    if not data or any(key in known or difflib.get_close_matches(str(key), known, n=1, cutoff=0.75) for key in data):
        return
    raise ScenarioError([Issue(str(path), 1, "", NO_VALUE,
                               f"not a scenario file: none of its {len(data)} top-level keys is a scenario field "
                               f"(allowed: {', '.join(known)})")])


def _kind(data: Any) -> str:
    """What a YAML document that is not a mapping holds, in words (never its content)."""
    if data is None:
        return "an empty document"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "plain text"
    return f"a single {type(data).__name__} value"
