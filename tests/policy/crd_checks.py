"""What the Kubernetes API server does with a CRD schema, done in the test process.

- `structural_problems`: the structural-schema rules (a type on every node, no $ref, no
  junctors except the int-or-string pattern, no additionalProperties: false, ...).
- `value_problems`: validate a manifest against the schema as the API server would with strict
  field validation (types, enums, bounds, patterns, required, list-map keys, unknown fields),
  then evaluate every `x-kubernetes-validations` CEL rule with cel-python.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from tests.conftest import need

INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def structural_problems(node: Any, path: str = "") -> list[str]:
    out: list[str] = []
    if not isinstance(node, dict):
        return [f"{path}: schema node is not a mapping"]
    for banned in ("$ref", "$defs", "definitions", "const", "title"):
        if banned in node:
            out.append(f"{path}: {banned} is not allowed")
    if node.get("additionalProperties") is False:
        out.append(f"{path}: additionalProperties: false is not allowed")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "type" not in node and not (int_or_string or preserve):
        out.append(f"{path}: no type")
    for junctor in ("anyOf", "allOf", "oneOf", "not"):
        if junctor in node and not (
            int_or_string and junctor == "anyOf" and node[junctor] == INT_OR_STRING
        ):
            out.append(f"{path}: {junctor} outside the int-or-string pattern")
    if node.get("type") == "array" and "items" not in node:
        out.append(f"{path}: array without items")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{path}: both properties and additionalProperties")
    for name, child in node.get("properties", {}).items():
        out.extend(structural_problems(child, f"{path}.{name}"))
    if "items" in node:
        out.extend(structural_problems(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        out.extend(structural_problems(node["additionalProperties"], f"{path}{{}}"))
    return out


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise AssertionError(f"unknown type {kind}")


def _bounds(node: dict[str, Any], value: float, path: str) -> list[str]:
    out = []
    if "minimum" in node:
        low = node["minimum"]
        if value < low or (node.get("exclusiveMinimum") and value == low):
            out.append(f"{path}: below minimum {low}")
    if "maximum" in node:
        high = node["maximum"]
        if value > high or (node.get("exclusiveMaximum") and value == high):
            out.append(f"{path}: above maximum {high}")
    return out


def _schema_problems(node: dict[str, Any], value: Any, path: str) -> list[str]:
    if node.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok("integer", value)):
            return [f"{path}: must be an integer or a string"]
    elif "type" in node and not _type_ok(node["type"], value):
        return [f"{path}: must be of type {node['type']}"]
    out: list[str] = []
    if "enum" in node and value not in node["enum"]:
        out.append(f"{path}: not one of {node['enum']}")
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0) or len(value) > node.get("maxLength", 1 << 30):
            out.append(f"{path}: length out of range")
        if "pattern" in node and re.search(node["pattern"], value) is None:
            out.append(f"{path}: does not match {node['pattern']}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.extend(_bounds(node, value, path))
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0) or len(value) > node.get("maxItems", 1 << 30):
            out.append(f"{path}: item count out of range")
        for i, item in enumerate(value):
            out.extend(_schema_problems(node["items"], item, f"{path}[{i}]"))
        keys = node.get("x-kubernetes-list-map-keys")
        if keys:
            seen = [tuple(item.get(k) for k in keys) for item in value if isinstance(item, dict)]
            if len(seen) != len(set(seen)):
                out.append(f"{path}: duplicate entries for map keys {keys}")
    if isinstance(value, dict):
        props = node.get("properties")
        if props is not None:
            for key in node.get("required", []):
                if key not in value:
                    out.append(f"{path}.{key}: required")
            for key, item in value.items():
                if key not in props:
                    if not node.get("x-kubernetes-preserve-unknown-fields"):
                        out.append(f"{path}.{key}: unknown field")
                    continue
                out.extend(_schema_problems(props[key], item, f"{path}.{key}"))
        elif isinstance(node.get("additionalProperties"), dict):
            for key, item in value.items():
                out.extend(_schema_problems(node["additionalProperties"], item, f"{path}.{key}"))
    return out


@lru_cache(maxsize=256)
def _program(rule: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule))


def _typed(node: dict[str, Any], value: Any) -> Any:
    """Numbers as the API server types them for CEL: `type: number` values are doubles."""
    if node.get("type") == "number" and isinstance(value, int | float):
        return float(value)
    if isinstance(value, list) and "items" in node:
        return [_typed(node["items"], v) for v in value]
    if isinstance(value, dict) and "properties" in node:
        return {
            k: _typed(node["properties"][k], v) if k in node["properties"] else v
            for k, v in value.items()
        }
    return value


def _cel_problems(node: dict[str, Any], value: Any, path: str) -> list[str]:
    import celpy

    out: list[str] = []
    for rule in node.get("x-kubernetes-validations", []):
        result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(_typed(node, value))})
        if isinstance(result, Exception) or not bool(result):
            out.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            out.extend(_cel_problems(node["items"], item, f"{path}[{i}]"))
    if isinstance(value, dict) and "properties" in node:
        for key, item in value.items():
            if key in node["properties"]:
                out.extend(_cel_problems(node["properties"][key], item, f"{path}.{key}"))
    return out


def compile_rules(schema: dict[str, Any]) -> int:
    """Compile every CEL rule in `schema` up front (cel-python raises the recursion limit the
    first time it parses, which hypothesis tests must not see happen inside them)."""
    cel_available()
    count = 0
    for rule in schema.get("x-kubernetes-validations", []):
        _program(rule["rule"])
        count += 1
    for child in schema.get("properties", {}).values():
        count += compile_rules(child)
    if "items" in schema:
        count += compile_rules(schema["items"])
    return count


def cel_available() -> None:
    try:
        import celpy  # noqa: F401
    except ImportError:
        need(False, "cel-python (celpy) is not installed; CEL rules cannot be evaluated")


def value_problems(schema: dict[str, Any], doc: Any) -> list[str]:
    """Schema problems first (the API server stops there), else failed CEL rules."""
    found = _schema_problems(schema, doc, "")
    if found:
        return found
    cel_available()
    return _cel_problems(schema, doc, "")
