"""The Jinja2 environment for collector and Kubernetes templates (``core/templates/``)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
import yaml

from core.resources import TEMPLATES_ROOT


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; multi-line strings as literal blocks (readable ConfigMaps)."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096,
                     allow_unicode=True).rstrip("\n")


@cache
def env() -> jinja2.Environment:
    e = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_ROOT)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
    )
    e.filters["to_yaml"] = to_yaml
    e.filters["tojson_str"] = lambda v: yaml.safe_dump(v, default_flow_style=True, width=4096).strip()
    return e


def render(template: str, **context: Any) -> str:
    return env().get_template(template).render(**context)
