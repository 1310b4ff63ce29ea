"""Key names and bounds every cache adapter applies alike (so memory and Redis agree)."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from core.domain.errors import ValidationError

#: Bump when the layout of keys (not of a cached value) changes; values carry their own salt.
PREFIX: Final = "phoenix:cache:v1:"
#: Expiry is always bounded: nothing cached outlives a day, nothing lives less than a second.
MIN_TTL_S: Final = 1
MAX_TTL_S: Final = 24 * 3600
#: Larger values are not cached (a request that big is recomputed; Redis stays small).
MAX_VALUE_BYTES: Final = 8 * 1024 * 1024
_NAMESPACE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def entry_name(namespace: str, key: str) -> str:
    """``phoenix:cache:v1:<namespace>:<sha256 of key>``: the key itself never reaches the store."""
    if not _NAMESPACE.match(namespace):
        raise ValidationError(f"cache namespace must match {_NAMESPACE.pattern}, got {namespace!r}")
    return f"{PREFIX}{namespace}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


def bounded_ttl(ttl_s: float) -> int:
    """Whole seconds within [MIN_TTL_S, MAX_TTL_S] (Redis ``EX`` takes integers)."""
    return int(min(max(ttl_s, MIN_TTL_S), MAX_TTL_S))
