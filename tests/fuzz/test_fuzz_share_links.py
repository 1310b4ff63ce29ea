"""Hostile share-link query parameters (issue 9), through the parsers the pages use, and hostile
signed share tokens (issue 12) through ``ShareService.open``.

``/experiment?id=…`` (``share.experiment_query``), ``/builder?pipeline=…&version=…``
(``share.builder_query``) and ``/cost_explorer?hosts=…&procs=…&interval=…&pipeline=…&card=…``
(``share.cost_explorer_query``), then what each page does with an accepted value: look the
experiment up, open the template or saved version, render the controls from the state.

A link is accepted (values the page can use as they are) or refused with a short, printable
``PhoenixError`` sentence; the cost explorer never refuses (defaults stand in). Never another
exception. Links the pages themselves write (``share.link``) always parse back to their state.

``?share=<token>``: any text, and any edit of a real token (a byte changed, cut, extended,
spliced with another token) is refused with ``ShareLinkError`` and a short sentence that never
echoes the token; only the untouched token opens, and only its own experiment.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from app.widgets import share
from core.catalog.templates import TEMPLATE_NAMES, get_template, is_template
from core.domain.errors import NotFoundError, PhoenixError, ShareLinkError
from core.domain.pipeline import NAME_RE
from core.domain.records import ShareLinkRecord
from core.services.experiments import ExperimentService
from core.services.shares import MAX_TOKEN, ShareService
from core.store.memory import MemoryDatabase
from tests.actors import operator, viewer
from tests.fuzz.profile import FUZZ

EXAMPLE_BUDGET_S = 2.0
SAVED = "team-topk"
CARDS = ["all", "grafana-cloud", "datadog-pro", "new-relic"]
PIPELINES = [*TEMPLATE_NAMES, SAVED]

# One store for every example: the properties only read from it.
DATABASE = MemoryDatabase()
with DATABASE.uow() as _uow:
    for _ in range(2):
        _uow.pipelines.add_version(SAVED, get_template("process-topk-v1").to_dict(), "")
    _uow.commit()
EXPERIMENTS = ExperimentService(DATABASE.uow, dry_run=True)
KNOWN_ID = EXPERIMENTS.create(operator(), name="shared", baseline="process-baseline-v1", candidate=f"{SAVED}@2").id
OTHER_ID = EXPERIMENTS.create(operator(), name="other", baseline="process-baseline-v1", candidate=f"{SAVED}@1").id
SHARES = ShareService(DATABASE.uow, lambda: b"fuzz-secret-" * 3, lambda: "http://phoenix.test")
TOKEN = parse_qs(urlsplit(SHARES.create(operator("fuzz"), "experiment", KNOWN_ID)[1]).query)["share"][0]
OTHER_TOKEN = parse_qs(urlsplit(SHARES.create(operator("fuzz"), "experiment", OTHER_ID)[1]).query)["share"][0]

# ------------------------------------------------------------------ strategies

ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=40)  # controls and surrogates included
VALUE = st.one_of(
    ANY_TEXT,
    st.sampled_from([
        "", " ", KNOWN_ID, KNOWN_ID.upper(), f" {KNOWN_ID} ", "exp-00000000", "'; DROP TABLE experiments; --",
        "../../etc/passwd", "%00", "\x00", "exp-\x00", "<script>alert(1)</script>", "{{7*7}}", "${jndi:x}",
        "1", "0", "-1", "+5", "1e9", "1.5", "٣", "²", "１", "9" * 5000, "0x10", "NaN", "inf", "1_000", " 250 ",
        "99999999999", "1000000000000000000000", "process-topk-v1", "PROCESS-TOPK-V1", SAVED, f"{SAVED}@1",
        "a" * 81, "a" * 80, "datadog-pro", "all", "x" * 100_000, "🔥", "\u202e", "\ud800",
    ]),
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,85}", fullmatch=True),
)
KEYS = st.sampled_from(["id", "pipeline", "version", "hosts", "procs", "interval", "card", "saved"])
PARAMS = st.dictionaries(st.one_of(KEYS, KEYS, ANY_TEXT), st.one_of(VALUE, st.lists(VALUE, max_size=3)), max_size=6)


def _sentence(exc: PhoenixError) -> None:
    message = str(exc)
    assert message.strip() and len(message) < 300, message
    assert message.isprintable(), repr(message)


# ------------------------------------------------------------------ /experiment?id=

@FUZZ
@given(params=PARAMS)
def test_experiment_links(params: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        exp_id = share.experiment_query(params)
    except PhoenixError as exc:
        _sentence(exc)
        return
    if exp_id is None:
        return
    assert exp_id == exp_id.strip() and 1 <= len(exp_id) <= 32 and exp_id.isascii() and exp_id.isprintable()
    try:
        exp = EXPERIMENTS.get(viewer(), exp_id)  # what the page does next
    except NotFoundError as exc:
        _sentence(exc)
    else:
        assert exp.id == KNOWN_ID
    assert time.monotonic() - started < EXAMPLE_BUDGET_S


# ------------------------------------------------------------------ /builder?pipeline=&version=

@FUZZ
@given(params=PARAMS)
def test_builder_links(params: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        shared = share.builder_query(params)
    except PhoenixError as exc:
        _sentence(exc)
        return
    if shared is None:
        return
    name, version = shared
    assert NAME_RE.match(name)
    assert version is None or (isinstance(version, int) and 1 <= version <= 999_999_999)
    try:  # what the page does next: the template, or the saved version (latest without ?version)
        if version is None and is_template(name):
            assert get_template(name).name == name
        else:
            with DATABASE.uow() as uow:
                rec = uow.pipelines.get_version(name, version)
            assert rec.pipeline == SAVED and rec.number in (1, 2)
    except NotFoundError as exc:
        _sentence(exc)
    assert time.monotonic() - started < EXAMPLE_BUDGET_S


# ------------------------------------------------------------------ /cost_explorer?…

def _plain_int(raw: Any) -> int | None:
    text = raw[-1] if isinstance(raw, list) and raw else raw
    if not isinstance(text, str):
        return None
    text = text.strip()
    body = text[1:] if text[:1] in "+-" else text
    return int(text) if body and body.isascii() and body.isdigit() and len(body) <= 12 else None


@FUZZ
@given(params=PARAMS, pipelines=st.one_of(st.just(PIPELINES), st.lists(st.sampled_from(PIPELINES), min_size=1,
                                                                          unique=True)))
def test_cost_explorer_links_never_refuse(params: dict[str, Any], pipelines: list[str]) -> None:
    state = share.cost_explorer_query(params, pipelines, CARDS)
    assert set(state) == {"hosts", "procs", "interval", "pipeline", "card"}
    for key, (lo, hi) in share.COST_LIMITS.items():
        assert isinstance(state[key], int) and not isinstance(state[key], bool)
        if key != "interval":
            assert lo <= state[key] <= hi
    assert state["interval"] in share.COST_INTERVALS
    assert state["pipeline"] in pipelines and state["card"] in CARDS
    for key in ("hosts", "procs"):  # a plain in-range number is taken as it is
        n = _plain_int(params.get(key))
        lo, hi = share.COST_LIMITS[key]
        if n is not None and lo <= n <= hi:
            assert state[key] == n
    # the page's selectboxes take the index of each value: these lookups must not fail
    pipelines.index(state["pipeline"])
    CARDS.index(state["card"])


@FUZZ
@given(hosts=st.integers(1, 100_000), procs=st.integers(10, 2000), interval=st.sampled_from(share.COST_INTERVALS),
       pipeline=st.sampled_from(PIPELINES), card=st.sampled_from(CARDS))
def test_links_the_pages_write_parse_back(hosts: int, procs: int, interval: int, pipeline: str, card: str) -> None:
    state = {"hosts": str(hosts), "procs": str(procs), "interval": str(interval), "pipeline": pipeline, "card": card}
    url = share.link("cost_explorer", state)
    parsed = {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    assert share.cost_explorer_query(parsed, PIPELINES, CARDS) == {
        "hosts": hosts, "procs": procs, "interval": interval, "pipeline": pipeline, "card": card}
    assert share.experiment_query({"id": KNOWN_ID}) == KNOWN_ID
    version = 1 + hosts % 2
    back = {k: v[-1] for k, v in parse_qs(urlsplit(share.link("builder", {"pipeline": SAVED, "version": str(version)}))
                                          .query).items()}
    assert share.builder_query(back) == (SAVED, version)


# ------------------------------------------------------------------ ?share=<signed token>

def _edits(token: str) -> st.SearchStrategy[str]:
    i = st.integers(0, len(token) - 1)
    return st.one_of(
        st.tuples(i, st.characters(blacklist_categories=())).map(lambda t: token[:t[0]] + t[1] + token[t[0] + 1:]),
        i.map(lambda n: token[:n]),
        st.text(max_size=20).map(lambda extra: token + extra),
        i.map(lambda n: token[:n] + OTHER_TOKEN[n:]),
        i.map(lambda n: OTHER_TOKEN[:n] + token[n:]),
        st.just(token.split(".")[0] + "." + OTHER_TOKEN.split(".")[1]),
        st.just(OTHER_TOKEN.split(".")[0] + "." + token.split(".")[1]),
    )


@FUZZ
@given(raw=st.one_of(VALUE, _edits(TOKEN), st.lists(VALUE, max_size=3)), key=st.sampled_from(["share", "id"]))
def test_share_tokens(raw: Any, key: str) -> None:
    started = time.monotonic()
    token = share.share_token({key: raw})
    if token is None:
        return
    assert len(token) <= 4096
    try:
        scope = SHARES.open(token)
    except ShareLinkError as exc:
        _sentence(exc)
        assert len(token) < 12 or token not in str(exc)
    else:
        assert token.strip() in (TOKEN, OTHER_TOKEN)  # only an untouched token opens
        assert scope.allows("experiment", KNOWN_ID if token.strip() == TOKEN else OTHER_ID)
        assert not scope.allows("experiment", OTHER_ID if token.strip() == TOKEN else KNOWN_ID)
    assert time.monotonic() - started < EXAMPLE_BUDGET_S


def test_share_tokens_are_bounded() -> None:
    assert len(TOKEN) <= MAX_TOKEN
    at = datetime(9999, 1, 1, tzinfo=UTC)  # the longest expiry the token can carry
    longest = ShareLinkRecord("f" * 16, "pipeline", "a" * 80 + "@999999999", "x", at, at)
    assert len(SHARES._token(longest)) <= MAX_TOKEN
