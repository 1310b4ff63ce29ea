"""A parameter form generated from a node type's ``Param`` schema.

Defaults are shown in each field's help, units are explained, and only values that
differ from the default are stored (so saved pipelines and YAML stay small and a changed
default in the catalogue reaches untouched nodes).
"""

from __future__ import annotations

from typing import Any

import yaml

from core.catalog.base import NodeType, Param
from core.domain.documents import load_document
from core.domain.errors import ValidationError
from core.numbers import count, human_bytes

_UNIT_TEXT = {"s": "seconds", "bytes": "bytes", "%": "percent", "ratio": "fraction 0–1"}


def param_help(p: Param) -> str:
    """Description + default + unit, the text under each field."""
    parts = [p.description]
    default = p.default
    if p.type == "bytes" and isinstance(default, int):
        parts.append(f"Default: {count(default)} bytes ({human_bytes(default)}).")
    elif default in ({}, [], "", None):
        parts.append("Default: empty.")
    else:
        parts.append(f"Default: `{default}`.")
    if p.unit:
        parts.append(f"Unit: {_UNIT_TEXT.get(p.unit, p.unit)}.")
    if p.type == "duration":
        parts.append("Go duration, e.g. 10s, 1m30s.")
    if p.minimum is not None or p.maximum is not None:
        lo = "" if p.minimum is None else f"{p.minimum:g}"
        hi = "" if p.maximum is None else f"{p.maximum:g}"
        parts.append(f"Range: {lo}…{hi}.")
    return " ".join(parts)


def parse_text_value(p: Param, text: str) -> tuple[Any, str | None]:
    """Turn a text field's content into the param value; (value, error message)."""
    if p.type == "list[str]":
        return [line.strip() for line in text.splitlines() if line.strip()], None
    if p.type in ("map", "rules"):
        if not text.strip():
            return ({} if p.type == "map" else []), None
        try:
            # The bounded reader pipeline files use: no alias bombs or deep nesting in a param either.
            value = load_document(text, source=p.name)
        except ValidationError as exc:
            return None, str(exc)
        want = dict if p.type == "map" else list
        if not isinstance(value, want):
            return None, f"{p.name}: must be a YAML {'mapping' if want is dict else 'list'}"
        return value, None
    return text, None


def text_for(p: Param, value: Any) -> str:
    if p.type == "list[str]":
        return "\n".join(str(v) for v in value or [])
    if p.type in ("map", "rules"):
        return "" if not value else yaml.safe_dump(value, sort_keys=False).strip()
    return "" if value is None else str(value)


def render_param_form(t: NodeType, params: dict[str, Any], key: str) -> tuple[dict[str, Any], list[str]] | None:
    """Draw the form; on submit return (params without defaults, parse errors), else None."""
    import streamlit as st

    current = t.with_defaults(params)
    values: dict[str, Any] = {}
    with st.form(key=key, border=False):
        basic = [p for p in t.params if not p.advanced]
        advanced = [p for p in t.params if p.advanced]
        for p in basic:
            values[p.name] = _field(st, p, current.get(p.name), f"{key}.{p.name}")
        if advanced:
            with st.expander("Advanced"):
                for p in advanced:
                    values[p.name] = _field(st, p, current.get(p.name), f"{key}.{p.name}")
        if not t.params:
            st.caption("This node type has no parameters.")
        submitted = st.form_submit_button("Apply parameters", type="primary")
    if not submitted:
        return None
    out: dict[str, Any] = {}
    errors: list[str] = []
    for p in t.params:
        raw = values[p.name]
        if isinstance(raw, str) and p.type in ("list[str]", "map", "rules"):
            value, err = parse_text_value(p, raw)
            if err:
                errors.append(err)
                continue
        else:
            value = raw
        if p.type in ("int", "bytes") and isinstance(value, float) and value.is_integer():
            value = int(value)
        if value != p.default:
            out[p.name] = value
    return out, errors


def _field(st: Any, p: Param, value: Any, key: str) -> Any:
    label = p.name + (f" ({_UNIT_TEXT.get(p.unit, p.unit)})" if p.unit else "")
    helptext = param_help(p)
    if p.type == "bool":
        return st.checkbox(label, value=bool(value), help=helptext, key=key)
    if p.type == "enum" and p.choices:
        idx = p.choices.index(value) if value in p.choices else 0
        return st.selectbox(label, p.choices, index=idx, help=helptext, key=key)
    if p.type in ("int", "bytes"):
        v = int(value) if isinstance(value, int | float) else int(p.default or 0)
        kwargs: dict[str, Any] = {"step": 1, "value": v}
        if p.minimum is not None:
            kwargs["min_value"] = int(p.minimum)
        if p.maximum is not None:
            kwargs["max_value"] = int(p.maximum)
        out = st.number_input(label, help=helptext, key=key, **kwargs)
        if p.type == "bytes":
            st.caption(f"= {human_bytes(out)}")
        return out
    if p.type == "float":
        v = float(value) if isinstance(value, int | float) else float(p.default or 0.0)
        kwargs = {"value": v, "format": "%g"}
        if p.minimum is not None:
            kwargs["min_value"] = float(p.minimum)
        if p.maximum is not None:
            kwargs["max_value"] = float(p.maximum)
        return st.number_input(label, help=helptext, key=key, **kwargs)
    if p.type == "list[str]" and p.choices:
        return st.multiselect(label, p.choices, default=[v for v in value or [] if v in p.choices],
                              help=helptext, key=key)
    if p.type in ("list[str]", "map", "rules"):
        return st.text_area(label, value=text_for(p, value), help=helptext + " One item per line."
                            if p.type == "list[str]" else helptext + " YAML.", key=key, height=90)
    return st.text_input(label, value=text_for(p, value), help=helptext, key=key)
