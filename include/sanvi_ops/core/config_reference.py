"""The configuration reference (``docs/configuration.md``), generated from the pydantic schema.

Every key of ``include/config/maintenance.yaml`` is listed with its type, constraints and
default as :class:`sanvi_ops.core.config.MaintenanceConfig` declares them; the text of each section is
its model's docstring, and a key's note is the comment beside it in the shipped
``maintenance.yaml`` (which is the annotated example). The reference is never edited by hand::

    make docs            # rewrites docs/configuration.md

and ``tests/core/test_config_reference.py`` fails when the committed file is out of date.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, GuideTask, MaintenanceConfig, Tasks

REPO = Path(__file__).resolve().parents[3]
OUTPUT = REPO / "docs" / "configuration.md"

_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


@dataclass(frozen=True)
class Row:
    """One documented key."""

    path: str
    type: str
    default: str
    note: str


def yaml_comments(text: str) -> dict[str, str]:
    """``key.path`` → the comment at the end of its line (``foo: 1  # note``) in a YAML file.

    Paths use ``[]`` for list items and keep mapping keys as they are; a key written under a
    mapping of names (``tasks.system_health_check.time``) is also recorded under the generic
    path ``tasks.<name>.time`` the first time it is seen.
    """
    notes: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _KEY_LINE.match(line)
        if not m:
            continue
        indent = len(m["indent"]) + (len(m["dash"]) if m["dash"] else 0)
        if m["dash"]:
            # "- key:" opens a list item: its parent key gains "[]".
            while stack and stack[-1][0] >= len(m["indent"]):
                stack.pop()
            if stack and not stack[-1][1].endswith("[]"):
                stack[-1] = (stack[-1][0], stack[-1][1] + "[]")
        else:
            while stack and stack[-1][0] >= indent:
                stack.pop()
        stack.append((indent, m["key"]))
        rest = m["rest"]
        comment = _trailing_comment(rest)
        if comment:
            notes.setdefault(".".join(k for _, k in stack), comment)
    return notes


def section_comments(text: str) -> dict[str, str]:
    """Top-level key → the comment block written just above it (separator lines dropped)."""
    return {path: block for path, block in block_comments(text).items() if "." not in path}


def block_comments(text: str) -> dict[str, str]:
    """``key.path`` → the comment block written just above the key, at any depth (separator
    lines dropped): ``tasks.database_maintenance.settings`` → the text above that ``settings:``."""
    out: dict[str, str] = {}
    block: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            if body and not set(body) <= {"-", "="}:
                block.append(body)
            elif not body:
                block.append("")
            continue
        m = _KEY_LINE.match(line)
        if m and not m["dash"]:
            indent = len(m["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, m["key"]))
            paragraph = " ".join(" ".join(block).split())
            if paragraph:
                out[".".join(k for _, k in stack)] = paragraph
        if stripped:
            block = []
    return out


def _trailing_comment(rest: str) -> str:
    in_single = in_double = False
    for i, ch in enumerate(rest):
        if ch == "'" and not in_double:
            in_single = not in_single
        elif ch == '"' and not in_single:
            in_double = not in_double
        elif ch == "#" and not in_single and not in_double and (i == 0 or rest[i - 1].isspace()):
            return rest[i + 1 :].strip()
    return ""


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """(type, metadata) with ``Annotated`` layers peeled off."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, metadata = args[0], [*metadata, *args[1:]]
    return annotation, metadata


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation, _ = _unwrap(annotation)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def type_name(annotation: Any) -> str:
    """A short, readable name of a field's type (``list[string]``, ``one of a, b``…)."""
    annotation, metadata = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {type_name(inner[0])}" if inner else "list"
    if origin is dict or origin is typing.Mapping:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if args else "mapping"
    if inspect.isclass(annotation):
        if issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        if issubclass(annotation, enum.Enum):
            return "one of " + ", ".join(str(m.value) for m in annotation)
        names = {str: "string", int: "integer", float: "number", bool: "boolean"}
        if annotation in names:
            base = names[annotation]
            text = _constraints(metadata)
            return f"{base} ({text})" if text else base
        friendly = {dt.timedelta: "duration", dt.time: 'time ("HH:MM")', dt.date: "date (YYYY-MM-DD)"}
        return friendly.get(annotation, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _constraints(metadata: list[Any]) -> str:
    parts: list[str] = []
    for item in metadata:
        for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(item, attr, None)
            if isinstance(item, annotated_types.BaseMetadata) and value is not None:
                parts.append(f"{sym} {value}")
        min_length = getattr(item, "min_length", None)
        if min_length:
            parts.append("not empty" if min_length == 1 else f"at least {min_length}")
    return ", ".join(parts)


def _field_type(field: FieldInfo) -> str:
    text = type_name(field.annotation)
    extra = _constraints(list(field.metadata))
    return f"{text} ({extra})" if extra and "(" not in text else text


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(the section's defaults)"
        return f"`{_short(value)}`"
    if field.default is PydanticUndefined:
        return "**required**"
    if isinstance(field.default, BaseModel):
        dumped = field.default.model_dump(mode="json", exclude_none=True)
        return "`" + _short(", ".join(f"{k}: {v}" for k, v in dumped.items())) + "`"
    return f"`{_short(field.default)}`"


def _short(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, dt.timedelta):
        return _duration(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list) and not value:
        return "[]"
    if isinstance(value, dict) and not value:
        return "{}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _doc(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or ""
    doc = re.sub(r":(?:class|func|data|meth|attr):`~?([^`]+)`", r"`\1`", doc)
    return doc.replace("``", "`")


def _walk(model: type[BaseModel], prefix: str, notes: dict[str, str]) -> Iterator[Row]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        note = notes.get(path, "")
        yield Row(path, _field_type(field), _default(field), note)
        annotation, _ = _unwrap(field.annotation)
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        nested = _model_of(annotation)
        if nested is None and origin in (typing.Union, types.UnionType):
            models = [m for m in (_model_of(a) for a in args) if m is not None]
            nested = models[0] if len(models) == 1 else None
        if nested is not None:
            yield from _walk(nested, f"{path}.", notes)
        elif origin in (list, tuple) and args and _model_of(args[0]) is not None:
            yield from _walk(_model_of(args[0]), f"{path}[].", notes)  # type: ignore[arg-type]
        elif origin is dict and len(args) == 2 and _model_of(args[1]) is not None:
            yield from _walk(_model_of(args[1]), f"{path}.<name>.", notes)  # type: ignore[arg-type]


def _generic_notes(notes: dict[str, str]) -> dict[str, str]:
    """Also file each note under ``section.<name>.key`` for mappings of named entries."""
    out = dict(notes)
    for path, note in notes.items():
        parts = path.split(".")
        if len(parts) >= 3:
            generic = ".".join([parts[0], "<name>", *parts[2:]])
            out.setdefault(generic, note)
    return out


def render(config_path: Path = DEFAULT_CONFIG_PATH) -> str:
    """The whole reference as Markdown."""
    text = config_path.read_text()
    notes = _generic_notes(yaml_comments(text))
    sections = section_comments(text)
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `make docs` (python -m sanvi_ops.core.config_reference) from the pydantic",
        "     schema in include/sanvi_ops/core/config.py and the comments of include/config/maintenance.yaml.",
        "     Do not edit by hand: tests/core/test_config_reference.py compares it with the schema. -->",
        "",
        "The file is `include/config/maintenance.yaml` (or the path in `SANVI_OPS_CONFIG`). Unknown",
        "keys are errors; a bad file fails at load time naming every `key.path` and the reason.",
        "`<name>` stands for an entry of a mapping of named entries (a task id, a team key…), `[]` for",
        'an item of a list. Durations are written `30s`, `15m`, `2h`, `7d`; times `"HH:MM"`.',
        "",
        "## Sections",
        "",
    ]
    top = MaintenanceConfig.model_fields
    for name, field in top.items():
        if name == "tasks":
            lines.append("- [`tasks`](#guidetask)")
            lines += [
                f"  - [`tasks.{task_id}.settings`](#{_settings_model(task_id).__name__.lower()})"
                for task_id in Tasks.model_fields
            ]
            continue
        nested = _model_of(field.annotation)
        if nested is None:
            annotation, _ = _unwrap(field.annotation)
            args = typing.get_args(annotation)
            nested = _model_of(args[-1]) if args else None
        anchor = f"#{nested.__name__.lower()}" if nested else "#top-level-keys"
        lines.append(f"- [`{name}`]({anchor})")
    lines += ["", "## Top-level keys", "", "| key | type | default | note |", "|---|---|---|---|"]
    for name, field in top.items():
        if _model_of(field.annotation) is None and not _is_named_mapping(field):
            lines.append(_row(Row(name, _field_type(field), _default(field), notes.get(name, ""))))
    seen: set[type[BaseModel]] = set()
    for name, field in top.items():
        if name == "tasks":
            lines += _tasks_sections(notes, sections, block_comments(text))
            continue
        model = _model_of(field.annotation)
        prefix = f"{name}."
        if model is None and _is_named_mapping(field):
            annotation, _ = _unwrap(field.annotation)
            model = _model_of(typing.get_args(annotation)[1])
            prefix = f"{name}.<name>."
        if model is None or model in seen:
            continue
        seen.add(model)
        lines += ["", f"## {model.__name__}", "", f"Key: `{prefix.rstrip('.')}`", ""]
        doc = _doc(model)
        if doc:
            lines += [doc, ""]
        if name in sections:
            lines += [f"In the shipped file: {sections[name]}", ""]
        lines += ["| key | type | default | note |", "|---|---|---|---|"]
        lines += [_row(row) for row in _walk(model, prefix, notes)]
    return _unlink_missing("\n".join(lines) + "\n")


def _unlink_missing(text: str) -> str:
    """A type links to its model's section only where there is one: nested models (a silence, a
    threshold…) have no section of their own, their keys are the rows under the field's path."""
    anchors = {m.group(1).strip().lower() for m in re.finditer(r"^## (.+)$", text, re.M)}
    return re.sub(
        r"\[([^\]]+)\]\(#([\w-]+)\)",
        lambda m: m.group(0) if m.group(2) in anchors else m.group(1),
        text,
    )


def _task_model(task_id: str) -> type[BaseModel]:
    """The model of ``tasks.<task_id>`` (``GuideTask[X]`` or a subclass with rules of its own)."""
    model = _model_of(Tasks.model_fields[task_id].annotation)
    assert model is not None
    return model


def _settings_model(task_id: str) -> type[BaseModel]:
    """The settings model of ``tasks.<task_id>`` (``GuideTask[X]`` → ``X``)."""
    settings = _model_of(_task_model(task_id).model_fields["settings"].annotation)
    assert settings is not None
    return settings


def _tasks_sections(notes: dict[str, str], sections: dict[str, str], blocks: dict[str, str]) -> list[str]:
    """``tasks``: the calendar entry every task has (``tasks.<name>``), then each task's own
    ``settings`` under its DAG id."""
    lines = ["", "## GuideTask", "", "Key: `tasks.<name>`", "", _doc(GuideTask), ""]
    if "tasks" in sections:
        lines += [f"In the shipped file: {sections['tasks']}", ""]
    lines += ["| key | type | default | note |", "|---|---|---|---|"]
    for name, field in GuideTask.model_fields.items():
        path = f"tasks.<name>.{name}"
        if name == "settings":
            row = Row(path, "the task's settings model (below)", "(the model's defaults)", "")
            lines.append(_row(row))
            continue
        note = notes.get(path, "")
        if name == "approval":
            approval = {
                task_id: _task_model(task_id).model_fields["approval"] for task_id in Tasks.model_fields
            }
            gated = [task_id for task_id, spec in approval.items() if spec.default_factory is not None]
            note = f"set by default for {', '.join(gated)}" if gated else note
        lines.append(_row(Row(path, _field_type(field), _default(field), note)))
        nested = _model_of(next((a for a in typing.get_args(field.annotation) if _model_of(a)), None))
        if nested is not None:
            lines += [_row(row) for row in _walk(nested, f"{path}.", notes)]
    for task_id in Tasks.model_fields:
        model = _settings_model(task_id)
        prefix = f"tasks.{task_id}.settings"
        lines += ["", f"## {model.__name__}", "", f"Key: `{prefix}`", ""]
        doc = _doc(model)
        if doc:
            lines += [doc, ""]
        task_model = _task_model(task_id)
        if task_model.__name__ != f"GuideTask[{model.__name__}]":
            lines += [f"With its calendar entry: {_doc(task_model)}", ""]
        if prefix in blocks:
            lines += [f"In the shipped file: {blocks[prefix]}", ""]
        lines += ["| key | type | default | note |", "|---|---|---|---|"]
        lines += [_row(row) for row in _walk(model, f"{prefix}.", notes)]
    return lines


def _is_named_mapping(field: FieldInfo) -> bool:
    annotation, _ = _unwrap(field.annotation)
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is dict and len(args) == 2 and _model_of(args[1]) is not None


def _row(row: Row) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return f"| `{row.path}` | {cell(row.type)} | {cell(row.default)} | {cell(row.note)} |"


def main(argv: list[str]) -> int:
    """``python -m sanvi_ops.core.config_reference [--check]``: write (or compare) the reference."""
    text = render()
    if argv[:1] == ["--check"]:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
