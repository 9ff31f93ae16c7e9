"""JSON Schema for every event type, and the rule for what counts as a breaking change.

`python -m casetrail.contracts.schemas` writes the schema of every registered type into
the package's `schemas/` folder; the committed files are the published contracts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from casetrail.contracts.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_of(event_type: str) -> dict[str, Any]:
    return EVENT_TYPES[event_type].model_json_schema(mode="serialization")


def schema_path(event_type: str) -> Path:
    return SCHEMA_DIR / f"{event_type}.json"


def published(event_type: str) -> dict[str, Any] | None:
    path = schema_path(event_type)
    return json.loads(path.read_text()) if path.exists() else None


def export() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for event_type in sorted(EVENT_TYPES):
        path = schema_path(event_type)
        path.write_text(json.dumps(schema_of(event_type), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.rsplit("/", 1)[-1]
    return _resolve(root.get("$defs", {})[name], root)


def breaking_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str = "$",
    old_root: dict[str, Any] | None = None,
    new_root: dict[str, Any] | None = None,
) -> list[str]:
    """What a reader of `old` data or a writer of `old` data would trip on under `new`.

    Compatible: adding an optional property, widening an enum, relaxing a bound is not
    checked. Breaking: removing or retyping a property, a newly required property, an
    enum value removed, a changed const.
    """
    old_root = old_root if old_root is not None else old
    new_root = new_root if new_root is not None else new
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    if old.get("type") != new.get("type"):
        problems.append(f"{path}: type {old.get('type')!r} became {new.get('type')!r}")
    if "anyOf" in old or "anyOf" in new:
        old_options = old.get("anyOf", [old])
        new_options = new.get("anyOf", [new])
        if len(new_options) < len(old_options):
            problems.append(f"{path}: fewer alternatives than before")
        for index, (o, n) in enumerate(zip(old_options, new_options, strict=False)):
            problems += breaking_changes(o, n, f"{path}|{index}", old_root, new_root)
    if "enum" in old:
        removed = set(old["enum"]) - set(new.get("enum", []))
        if removed:
            problems.append(f"{path}: enum values removed {sorted(map(str, removed))}")
    if "const" in old and old.get("const") != new.get("const"):
        problems.append(f"{path}: const changed")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{path}.{name}: removed")
            continue
        problems += breaking_changes(
            old_prop, new_props[name], f"{path}.{name}", old_root, new_root
        )
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"{path}.{name}: newly required")
    if "items" in old and "items" in new:
        problems += breaking_changes(old["items"], new["items"], f"{path}[]", old_root, new_root)
    if "prefixItems" in old or "prefixItems" in new:
        for index, (o, n) in enumerate(
            zip(old.get("prefixItems", []), new.get("prefixItems", []), strict=False)
        ):
            problems += breaking_changes(o, n, f"{path}[{index}]", old_root, new_root)
    return problems


if __name__ == "__main__":
    for written in export():
        print(written)
