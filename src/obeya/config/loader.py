"""Read `obeya.yaml` and report every problem with its file, line and key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from obeya.config.model import ObeyaConfig

CONFIG_VARIABLE = "OBEYA_CONFIG"
DEFAULT_CONFIG_FILE = "obeya.yaml"

Location = tuple[str | int, ...]


class ConfigError(Exception):
    """`obeya.yaml` could not be read or says something Obeya does not accept."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def _build(node: yaml.Node, location: Location, lines: dict[Location, int]) -> Any:
    """The Python value of a YAML node, noting the line (1-based) of every key and item on the way."""
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            lines[(*location, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*location, key), lines)
            lines[(*location, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*location, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _dotted(location: Location) -> str:
    """``rules.statuses."In Review".flow_state``: the location of a setting as a user would write it."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = f'"{part}"' if any(c in part for c in ' ."') else part
            text += f".{name}" if text else name
    return text


def parse_config(text: str, path: Path) -> ObeyaConfig:
    """Validate the text of a config file; `path` is only used in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(path, [f"{where}: not valid YAML: {getattr(error, 'problem', error)}"]) from error
    lines: dict[Location, int] = {}
    data = {} if root is None else _build(root, (), lines)
    if not isinstance(data, dict):
        raise ConfigError(
            path, [f"{path}:1: the file must be a mapping of settings, not {type(data).__name__}"]
        )
    try:
        return ObeyaConfig.model_validate(data)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            location: Location = tuple(e["loc"])
            known = location
            while known and known not in lines:
                known = known[:-1]
            line = lines.get(known, 1)
            if e["type"] == "extra_forbidden":
                message = "unknown key (check its spelling and docs/configuration.md)"
            else:
                message = e["msg"]
            problems.append(f"{path}:{line}: {_dotted(location)}: {message}")
        raise ConfigError(path, problems) from error


def load_config(path: Path | str | None = None) -> ObeyaConfig:
    """The configuration from `path`, else ``$OBEYA_CONFIG``, else ``./obeya.yaml``; defaults if none.

    A file named explicitly (argument or variable) must exist; the default file is optional.
    """
    explicit = path or os.environ.get(CONFIG_VARIABLE)
    config_path = Path(explicit or DEFAULT_CONFIG_FILE)
    if not config_path.exists():
        if explicit:
            raise ConfigError(config_path, [f"{config_path}: no such file"])
        return ObeyaConfig()
    return parse_config(config_path.read_text(encoding="utf-8"), config_path)
