"""Regular expressions written by users, matched with RE2 only.

Critical-policy rules, hostmetrics include/exclude names and rollup categories are user
patterns. The collector evaluates them with Go's RE2 (OTTL ``IsMatch``, filterset
``regexp``); Phoenix evaluates them with RE2 too, so both sides accept the same patterns,
give the same answers, and run in time linear in the input: ``(a+)+$`` cannot make a page,
a CLI command or the runtime measurement hang the way Python's backtracking ``re`` would.

- :func:`regex_problem` says why a pattern is refused (validation time);
- :func:`search` matches one string (the Settings tester, graph checks);
- :func:`match_values` matches many distinct values at once (categoricals' categories):
  Arrow's RE2 kernel when the values convert to Arrow strings, google-re2 per value otherwise.

Python's ``re`` is never used on a user pattern here; it only scans the pattern *text* with
fixed expressions to explain refusals in words.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import re2

from core.domain.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np

MAX_REGEX_LEN = 1024

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # refusals are reported as ValidationError, not on stderr

# Constructs users bring from Perl/Python that RE2 refuses: a sentence beats RE2's own message.
_NOT_RE2 = (
    (re.compile(r"\(\?[=!]"), "lookahead (?= / (?! is not supported by RE2"),
    (re.compile(r"\(\?<[=!]"), "lookbehind (?<= / (?<! is not supported by RE2"),
    (re.compile(r"\(\?>"), "atomic groups (?> are not supported by RE2"),
    (re.compile(r"\(\?\("), "conditional groups are not supported by RE2"),
    (re.compile(r"\(\?P="), "named backreferences are not supported by RE2"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]"), "backreferences (\\1 …) are not supported by RE2"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\Z"), "\\Z is not RE2; use \\z or $"),
    (re.compile(r"[*+?}][+]"), "possessive quantifiers are not supported by RE2"),
)
# C++ RE2 accepts this but Go's regexp (the collector) does not.
_NOT_GO = ((re.compile(r"(?<!\\)(?:\\\\)*\\C"), "\\C (any byte) is not supported by the collector's Go RE2"),)


def regex_problem(pattern: Any) -> str | None:
    """Why ``pattern`` is not a usable RE2 regex, or None when it is. Phrased to follow a name."""
    if not isinstance(pattern, str) or pattern == "":
        return "must be a non-empty regular expression"
    if len(pattern) > MAX_REGEX_LEN:
        return f"is longer than {MAX_REGEX_LEN} characters"
    try:
        _compiled(pattern)
    except re2.error as exc:
        for rx, why in _NOT_RE2:
            if rx.search(pattern):
                return why
        return f"does not compile: {_reason(exc)}"
    except UnicodeEncodeError:
        return "is not valid UTF-8 text"
    for rx, why in _NOT_GO:
        if rx.search(pattern):
            return why
    return None


def compile_user(pattern: str, where: str = "pattern") -> Any:
    """The compiled RE2 pattern (bytes mode); ValidationError naming ``where`` and the pattern."""
    why = regex_problem(pattern)
    if why:
        raise ValidationError(f"{where} {quote_pattern(pattern)} {why}")
    return _compiled(pattern)


def search(pattern: str, text: str | None, where: str = "pattern") -> bool:
    """Search semantics, like OTTL ``IsMatch``. Missing text never matches."""
    if text is None:
        return False
    return compile_user(pattern, where).search(_bytes(text)) is not None


def match_values(pattern: str, values: Any, where: str = "pattern") -> np.ndarray:
    """Boolean per value (search semantics); None/NA never match. Vectorised via Arrow's RE2."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rx = compile_user(pattern, where)  # refuse before Arrow sees it: one set of rules
    arr_in = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if len(arr_in) == 0:
        return np.zeros(0, dtype=bool)
    try:
        arr = pa.array(arr_in, type=pa.string(), from_pandas=True)
        hit = pc.match_substring_regex(arr, pattern)
        return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
    except (pa.ArrowException, UnicodeEncodeError, TypeError):
        # Values Arrow cannot hold as UTF-8 (undecodable /proc bytes as surrogates), or a
        # pattern Arrow's build refuses: the same RE2 semantics, one value at a time.
        return np.fromiter((_is_text(v) and rx.search(_bytes(v)) is not None for v in arr_in),
                           dtype=bool, count=len(arr_in))


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    # Bytes mode: text is matched as the bytes the collector sees (invalid UTF-8 included).
    return re2.compile(pattern.encode("utf-8"), _OPTIONS)


def _bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")  # back to the raw bytes from /proc
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _is_text(v: Any) -> bool:
    return isinstance(v, str)


def _reason(exc: re2.error) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)


def quote_pattern(pattern: Any) -> str:
    """A pattern as shown in messages: repr, cut to 80 characters."""
    text = repr(pattern)
    return text if len(text) <= 80 else text[:77] + "..."
