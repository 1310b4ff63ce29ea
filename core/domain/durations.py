"""The one duration grammar: Go's ``time.ParseDuration``, as the collector reads it.

``10s``, ``500ms``, ``1.5h``, ``1m30s``: decimal numbers, each with a unit (``ns``, ``us``,
``µs``, ``ms``, ``s``, ``m``, ``h``), summed; ``0`` alone needs no unit. Collector configs
(node parameters) use exactly that: ``strict=True``. People typing into a CLI flag or a form
may also give a bare number of seconds (``42``) and stray spaces, which the default allows. Phoenix never
takes a negative duration, so a sign is refused here; ranges (at least 1s, at most a week)
are each caller's own, because they differ per field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from core.domain.errors import ValidationError

_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h)"
_GO_DURATION = re.compile(rf"(?:{_NUMBER}{_UNIT})+|0")
_PART = re.compile(rf"({_NUMBER})({_UNIT})")
_BARE_SECONDS = re.compile(_NUMBER)
# Go's Duration is an int64 of nanoseconds: about 292 years.
MAX_SECONDS = (2**63 - 1) / 1e9
EXAMPLES = "like 60s, 5m or 1h (units ns, us, ms, s, m, h; combined as in 1m30s)"


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def parse_duration(text: Any, what: str = "duration", *, strict: bool = False) -> float:
    """Seconds in a duration; ``ValidationError`` naming ``what`` when it is not one.

    Unless ``strict``, a number of seconds (``42``, ``"42"``) and surrounding spaces pass too.
    """
    loose = not strict
    if loose and isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ValidationError(f"{what} must be a finite number of seconds, got {text!r}")
        if text < 0:
            raise ValidationError(f"{what} must be positive, got {text!r}")
        return float(text)
    if not isinstance(text, str):
        raise ValidationError(f"{what} must be a duration {EXAMPLES}, got {text!r}")
    body = text.strip() if loose else text
    if body.startswith(("-", "+")):
        raise ValidationError(f"{what} must be positive, got {_shown(text)!r}")
    if loose and _BARE_SECONDS.fullmatch(body):
        seconds = float(body)
    elif _GO_DURATION.fullmatch(body):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(body))
    else:
        raise ValidationError(f"{what} must be a duration {EXAMPLES}, got {_shown(text)!r}")
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:  # '1' * 400 + 's' overflows
        raise ValidationError(f"{what} is far too long, got {_shown(text)!r}")
    return seconds


def duration_or_none(text: Any) -> float | None:
    """Seconds in a strict (Go) duration, or None: for checks that phrase their own message."""
    try:
        return parse_duration(text, strict=True)
    except ValidationError:
        return None


def format_duration(seconds: float) -> str:
    """The shortest of ``2h``, ``5m`` or ``90s`` that says exactly ``seconds``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
