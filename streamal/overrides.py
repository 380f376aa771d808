"""``--set key.path=value``: command-line overrides of any config key.

The key path is the one config errors print (:func:`streamal.config._path`): keys joined by
dots, list items as ``[i]``, odd keys JSON-quoted (``scheduler.stage_walltime_s["S 0"]``). The
value is YAML (``2``, ``true``, ``null``, ``[1, 2]``, ``{a: 1}``, a string; empty is null).
Overrides are applied, in order, to the loaded YAML mapping before validation, so the result is
checked exactly like a file::

    >>> from streamal.overrides import apply_overrides, parse_overrides
    >>> data = {"workflow": {"phases": [{"samples": 10}, {"samples": 20}]}}
    >>> sets = parse_overrides(["workflow.phases[1].samples=900", "policy.options.k=5"])
    >>> apply_overrides(data, sets)
    {'workflow': {'phases': [{'samples': 10}, {'samples': 900}]}, 'policy': {'options': {'k': 5}}}
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from streamal.errors import ConfigError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[(-?\d+)\]")


@dataclass(frozen=True)
class Override:
    """One ``--set`` argument: the text as given, its key path and its parsed value."""

    text: str
    path: tuple[str | int, ...]
    value: Any

    def __str__(self) -> str:
        return self.text


def parse_key_path(text: str) -> tuple[str | int, ...]:
    """``workflow.phases[1].samples`` -> ``("workflow", "phases", 1, "samples")``.

    Raises:
        ValueError: The path is empty or malformed (the message says where).
    """
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "[":
            if text.startswith('["', pos):
                try:
                    key, end = json.JSONDecoder().raw_decode(text, pos + 1)
                except ValueError:
                    raise ValueError(f"unterminated quoted key at {text[pos:]!r}") from None
                if not text.startswith("]", end):
                    raise ValueError(f"expected ']' after the quoted key at {text[pos:]!r}")
                parts.append(key)
                pos = end + 1
                continue
            m = _INDEX.match(text, pos)
            if not m:
                raise ValueError(f'expected [INDEX] or ["KEY"] at {text[pos:]!r}')
            if int(m.group(1)) < 0:
                raise ValueError(f"list index must be >= 0 (got {m.group(1)})")
            parts.append(int(m.group(1)))
            pos = m.end()
            continue
        if parts:
            if text[pos] != ".":
                raise ValueError(f"expected '.' or '[' at {text[pos:]!r}")
            pos += 1
        m = _KEY.match(text, pos)
        if not m:
            raise ValueError(
                f"expected a key at {text[pos:]!r}"
                if pos < len(text)
                else "the path ends with '.'; a key must follow"
            )
        parts.append(m.group(0))
        pos = m.end()
    if not parts:
        raise ValueError("empty key path")
    return tuple(parts)


def parse_override(text: str) -> Override:
    """Parse one ``key.path=value`` (the value as YAML).

    Raises:
        ConfigError: ``--set TEXT: what is wrong``.
    """
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set {text}: expected KEY.PATH=VALUE (no '=')")
    try:
        path = parse_key_path(key.strip())
    except ValueError as exc:
        raise ConfigError(f"--set {text}: bad key path: {exc}") from None
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        if mark is not None:
            problem += f" (value column {mark.column + 1})"
        raise ConfigError(f"--set {text}: the value is not valid YAML: {problem}") from None
    return Override(text=text, path=path, value=value)


def parse_overrides(texts: Sequence[str] | None) -> list[Override]:
    """:func:`parse_override` of each argument, in order (``None``: no overrides)."""
    return [parse_override(t) for t in texts or ()]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    return f"{value!r} (a {type(value).__name__})"


def _unshared(value: Any) -> Any:
    """A deep copy where no two places share a mapping or list (as YAML ``*alias`` loads)."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return copy.deepcopy(value)


def apply_overrides(data: Any, overrides: Sequence[Override]) -> Any:
    """A deep copy of ``data`` (the loaded YAML) with each override set, in order.

    A missing (or null) mapping on the way is created; a list index must already exist.

    Raises:
        ConfigError: ``--set TEXT: ...`` naming the part of the path that cannot be set.
    """
    from streamal.config import _path

    try:
        data = {} if data is None else _unshared(data)
    except RecursionError:
        raise ConfigError("the config refers to itself (a YAML alias loop)") from None
    for o in overrides:
        node = data
        for depth, part in enumerate(o.path):
            here = _path(o.path[:depth]) if depth else "the config's top level"
            last = depth == len(o.path) - 1
            if isinstance(part, int):
                if not isinstance(node, list):
                    raise ConfigError(f"--set {o}: {here} is {_kind(node)}, not a list")
                if part >= len(node):
                    raise ConfigError(
                        f"--set {o}: {here} has {len(node)} item(s); index {part} is past its end"
                    )
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {o}: {here} is {_kind(node)}, not a mapping")
            if last:
                node[part] = _unshared(o.value)
                break
            child = node.get(part) if isinstance(node, dict) else node[part]
            if child is None:
                if isinstance(o.path[depth + 1], int):
                    raise ConfigError(
                        f"--set {o}: {_path(o.path[: depth + 1])} is not set; "
                        "set the whole list instead"
                    )
                child = node[part] = {}
            node = child
    return data


def dump_effective_config(data: Any, *, source: str, overrides: Sequence[Override]) -> str:
    """The effective config as YAML, headed by a comment naming the file and the overrides.

    Saved as a run's ``config.yaml``, so ``--resume`` reads the same values.
    """
    header = [f"# effective config: {source} with"]
    header += [f"#   --set {str(o).replace(chr(10), ' ')}" for o in overrides]
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if yaml.safe_load(body) != data:  # safe_dump round-trips safe_load's types; be sure
        raise ConfigError(f"{source}: the config with --set cannot be saved as YAML faithfully")
    return "\n".join(header) + "\n" + body
