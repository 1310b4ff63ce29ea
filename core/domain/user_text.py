"""User text bound for a collector config: what may never be in it.

The collector expands ``${...}`` (and reads ``$$`` as an escaped ``$``) in every string of its
config before any component sees it, so user text carrying either could pull an environment
variable (a secret) into an OTTL statement or a header. Control characters would break out
of OTTL string literals and YAML comments. Such text is refused, never rewritten: what the
user typed is what the collector runs.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_DEPTH = 8


def text_problem(value: str) -> str | None:
    if "${" in value or "$$" in value:
        return (f"{value[:60]!r} contains '${{' or '$$', which the collector would expand as a variable "
                "reference; secrets come only from the environment variables a node names")
    if _CONTROL.search(value):
        return f"{value[:60]!r} contains a control character (newline, tab, NUL, ...)"
    return None


def user_text_problems(value: Any, _depth: int = 0) -> list[str]:
    """Problems with user text anywhere inside a value (keys of mappings included)."""
    if _depth > MAX_DEPTH:
        return []
    if isinstance(value, str):
        problem = text_problem(value)
        return [problem] if problem else []
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in (*user_text_problems(k, _depth + 1),
                                                       *user_text_problems(v, _depth + 1))]
    if isinstance(value, list | tuple):
        return [m for v in value for m in user_text_problems(v, _depth + 1)]
    return []
