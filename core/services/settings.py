"""The settings service: the one owner of the settings users edit (docs/configuration.md).

It holds the default critical policy, the price cards, the Prometheus URL, the retention
and the public URL. Each value resolves through layers, lowest first:

    built-in default  <  database (edited in Settings)  <  environment (``PHOENIX_*``)

The environment wins because it is what the operator deployed: a value pinned there is
not something an admin clicking in the UI should silently replace. Every resolved value
carries its ``source`` and the layers it hides, so the Settings page can say so.

Every change goes through ``set_*`` / ``reset``: validated first (nothing invalid is
stored), then written with an audit entry (actor, setting, old → new; URLs masked).
A broken value already in place (an env var, a file it names, a row edited by hand) is
never dropped: it is reported with its source in ``Sourced.error`` and consumers calling
``require()`` get a ``ValidationError`` naming it, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import yaml

from core.cost import PriceCard, load_price_cards, monthly_cost, parse_price_cards, price_card_document
from core.domain.accounts import Actor, Role
from core.domain.critical import DEFAULT_POLICY, CriticalPolicy, load_policy_file, load_policy_text
from core.domain.errors import ConcurrencyError, PhoenixError, TemporaryError, ValidationError
from core.domain.ports import UnitOfWorkFactory
from core.observability.tracing import traced_service
from core.redact import mask_url
from core.services.authz import internal, mutation, query, record, unauthenticated

log = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["default", "database", "environment"]

#: Setting name → (database key, environment variable). The env var of the policy and the
#: price cards names a file; the others hold the value itself.
CRITICAL_POLICY, PRICE_CARDS, PROMETHEUS_URL, RETENTION_DAYS, PUBLIC_URL = (
    "critical_policy", "price_cards", "prometheus_url", "retention_days", "public_url")
ENV_VARS: dict[str, str] = {
    CRITICAL_POLICY: "PHOENIX_CRITICAL_POLICY_FILE",
    PRICE_CARDS: "PHOENIX_PRICE_CARD_FILE",
    PROMETHEUS_URL: "PHOENIX_PROMETHEUS_URL",
    RETENTION_DAYS: "PHOENIX_RETENTION_DAYS",
    PUBLIC_URL: "PHOENIX_PUBLIC_URL",
}
KEY_PREFIX = "settings."  # database keys; other users of uow.settings (promotion) use other prefixes
DEFAULT_PUBLIC_URL = "http://localhost:8501"
DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
MAX_URL = 2000
# Files an older Settings page wrote into the data directory; adopted into the database once.
LEGACY_FILES = {PRICE_CARDS: "price_cards.yaml", CRITICAL_POLICY: "critical_policy.yaml"}


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """One resolved setting: its value, the layer it came from and what that layer hides.

    ``error`` is set when the winning layer holds a value that cannot be used; ``value``
    is then the built-in default, shown only for reference: ``require()`` refuses.
    """

    value: T
    source: Source
    origin: str  # where exactly: "built-in", "database", "PHOENIX_PRICE_CARD_FILE=/etc/cards.yaml"
    hidden: tuple[Source, ...] = ()  # lower layers that also hold a value (overridden)
    error: str | None = None

    def require(self) -> T:
        if self.error is not None:
            raise ValidationError(self.error)
        return self.value


@dataclass(frozen=True)
class EffectiveSettings:
    critical_policy: Sourced[CriticalPolicy]
    price_cards: Sourced[list[PriceCard]]
    prometheus_url: Sourced[str | None]
    retention_days: Sourced[int]
    public_url: Sourced[str]
    database_error: str | None = None  # the database layer could not be read (shown, not raised)

    def items(self) -> list[tuple[str, Sourced[Any]]]:
        return [(CRITICAL_POLICY, self.critical_policy), (PRICE_CARDS, self.price_cards),
                (PROMETHEUS_URL, self.prometheus_url), (RETENTION_DAYS, self.retention_days),
                (PUBLIC_URL, self.public_url)]


# ---- validation: text in, typed value out, ValidationError naming ``where`` ------------------


def policy_from_text(text: Any, where: str) -> CriticalPolicy:
    if not isinstance(text, str):
        raise ValidationError(f"{where}: the critical policy must be YAML text")
    return load_policy_text(text, source=where)


def policy_text(policy: CriticalPolicy) -> str:
    """A policy as the YAML the Settings page edits and the database stores."""
    return yaml.safe_dump({"default_priority": policy.default_priority, **policy.to_dict()}, sort_keys=False)


def url_value(raw: Any, where: str) -> str:
    text = raw.strip() if isinstance(raw, str) else raw
    ok = isinstance(text, str) and 0 < len(text) <= MAX_URL and text.isprintable() and " " not in text
    if ok:
        try:
            parts = urlsplit(text)
            _ = parts.port  # raises ValueError for a port that is not a number 0-65535
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # a port that is not a number, a broken IPv6 literal
            ok = False
    if not ok or not isinstance(text, str):
        shown = mask_url(text)[:80] if isinstance(text, str) else repr(text)[:80]
        raise ValidationError(f"{where} must be an http(s) URL such as http://host:9090, got {shown!r}")
    return text.rstrip("/")


def retention_value(raw: Any, where: str) -> int:
    value = raw
    if isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValidationError(f"{where} must be a whole number of days, got {raw[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RETENTION_DAYS:
        raise ValidationError(f"{where} must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, "
                              f"got {str(raw)[:40]!r}")
    return value


def _cards_from_file(path: str, where: str) -> list[PriceCard]:
    try:
        return load_price_cards(path)
    except ValidationError as exc:
        raise ValidationError([f"{where}: {p}" for p in exc.problems]) from None
    except OSError as exc:
        raise ValidationError(f"{where}: cannot read the file ({exc.strerror or exc})") from None


def _policy_from_file(path: str, where: str) -> CriticalPolicy:
    try:
        return load_policy_file(path)
    except ValidationError as exc:
        raise ValidationError([f"{where}: {p}" for p in exc.problems]) from None
    except OSError as exc:
        raise ValidationError(f"{where}: cannot read the file ({exc.strerror or exc})") from None


# Per setting: the built-in default, how a stored value parses, how an env value parses, and
# how a value shows in the audit log (never a secret: URLs are masked).
_Parse = Callable[[Any, str], Any]


@dataclass(frozen=True)
class _Spec:
    default: Callable[[], Any]
    from_db: _Parse
    from_env: _Parse
    audit: Callable[[Any], Any]


def _mask(v: Any) -> Any:
    return mask_url(v) if isinstance(v, str) else v


SPECS: dict[str, _Spec] = {
    CRITICAL_POLICY: _Spec(lambda: DEFAULT_POLICY, policy_from_text, _policy_from_file, lambda v: v),
    PRICE_CARDS: _Spec(lambda: load_price_cards(None), parse_price_cards, _cards_from_file,
                       lambda v: _card_summary(v) if isinstance(v, dict) else v),
    PROMETHEUS_URL: _Spec(lambda: None, url_value, url_value, _mask),
    RETENTION_DAYS: _Spec(lambda: DEFAULT_RETENTION_DAYS, retention_value, retention_value, lambda v: v),
    PUBLIC_URL: _Spec(lambda: DEFAULT_PUBLIC_URL, url_value, url_value, _mask),
}


class StaleSetting(ConcurrencyError):
    """The caller named a stored value (If-Match) that is no longer the stored one."""


def stored_tag(stored: Any) -> str:
    """An ETag for a stored setting value: a hash of its canonical JSON ("default" when none)."""
    if stored is None:
        return "default"
    return hashlib.sha256(json.dumps(stored, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SettingView:
    """One setting as an admin sees it over the API: the value shown safely (URLs masked)."""

    name: str
    value: Any
    source: Source
    origin: str
    error: str | None


@dataclass(frozen=True)
class PriceCardView:
    """The price cards in use, where they come from, and the tag of the stored document."""

    document: dict[str, Any]
    source: Source
    origin: str
    tag: str


def _shown(name: str, value: Any) -> Any:
    if name == PRICE_CARDS:
        return price_card_document(value)
    if name == CRITICAL_POLICY:
        return policy_text(value)
    return _mask(value) if name in (PROMETHEUS_URL, PUBLIC_URL) else value


def _error_text(exc: ValidationError) -> str:
    return "; ".join(exc.problems) if exc.problems else str(exc)


#: Who adopts an older release's settings files at start-up (no user is signed in then).
STARTUP = Actor("phoenix-startup", Role.ADMIN, "operator")


@traced_service
class SettingsService:
    """Read the effective settings and change them (database layer), with audit.

    ``uow_factory`` None means no database (a CLI run on a bare machine): the database
    layer is simply absent. ``env`` defaults to the process environment.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory | None, env: Mapping[str, str] | None = None):
        self.uow_factory = uow_factory
        self.env = os.environ if env is None else env

    # ---- reading -----------------------------------------------------------------------
    def _read(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The database values of ``names`` (absent ones left out); PhoenixError when unreadable."""
        if self.uow_factory is None:
            return {}
        with self.uow_factory() as uow:  # one key each: uow.settings also holds promotion records
            values = {name: uow.settings.get(KEY_PREFIX + name) for name in names}
        return {name: v for name, v in values.items() if v is not None}

    def _stored(self) -> tuple[dict[str, Any], str | None]:
        try:
            return self._read(tuple(SPECS)), None
        except PhoenixError as exc:
            return {}, f"database settings could not be read: {exc}"

    def _resolve(self, name: str, stored: Mapping[str, Any]) -> Sourced[Any]:
        spec = SPECS[name]
        var = ENV_VARS[name]
        raw_env = self.env.get(var, "")
        layers: list[Source] = []
        if stored.get(name) is not None:
            layers.append("database")
        if raw_env.strip():
            layers.append("environment")
        if not layers:
            return Sourced(spec.default(), "default", "built-in")
        top = layers[-1]
        hidden = tuple(reversed(layers[:-1]))
        if top == "environment":
            origin = f"{var}={mask_url(raw_env) if name in (PROMETHEUS_URL, PUBLIC_URL) else raw_env.strip()}"
            parse, raw, where = spec.from_env, raw_env.strip(), var
        else:
            origin = "database (edited in Settings)"
            parse, raw, where = spec.from_db, stored[name], f"database setting {KEY_PREFIX}{name}"
        try:
            return Sourced(parse(raw, where), top, origin, hidden)
        except ValidationError as exc:  # kept as it is, reported with its source; nothing is dropped
            text = _error_text(exc)
            return Sourced(spec.default(), top, origin, hidden, error=text if where in text else f"{where}: {text}")

    @internal("settings.read")
    def effective(self) -> EffectiveSettings:
        stored, db_error = self._stored()
        resolved = {name: self._resolve(name, stored) for name in SPECS}
        return EffectiveSettings(**resolved, database_error=db_error)

    @internal("settings.read")
    def get(self, name: str) -> Sourced[Any]:
        if name not in SPECS:
            raise ValidationError(f"unknown setting {name!r}; known: {', '.join(SPECS)}")
        try:
            stored = self._read((name,))
        except TemporaryError:
            raise  # a database that is down for a moment: the caller retries (the scheduler does)
        except PhoenixError as exc:  # what Settings saved is unknown: guessing the default would mislead
            raise ValidationError(f"database settings could not be read: {exc}") from None
        return self._resolve(name, stored)

    # The typed accessors consumers call; each raises ValidationError naming a broken source.
    @internal("settings.read")
    def critical_policy(self) -> CriticalPolicy:
        return self.get(CRITICAL_POLICY).require()

    @internal("settings.read")
    def default_critical_rules(self) -> list[dict[str, str]] | None:
        """Rules a new experiment without its own policy gets; None while the built-in default applies
        (experiments then record "default policy", as they always have)."""
        s = self.get(CRITICAL_POLICY)
        policy = s.require()
        return None if s.source == "default" else [r.to_dict() for r in policy.rules]

    @internal("settings.read")
    def price_cards(self) -> list[PriceCard]:
        return self.get(PRICE_CARDS).require()

    @internal("settings.read")
    def prometheus_url(self) -> str | None:
        return self.get(PROMETHEUS_URL).require()

    @internal("settings.read")
    def retention_days(self) -> int:
        return self.get(RETENTION_DAYS).require()

    @internal("settings.read")
    def public_url(self) -> str:
        return self.get(PUBLIC_URL).require()

    @query("settings.inspect")
    def overview(self, actor: Actor) -> list[SettingView]:
        """Every setting as it resolves, with its source; URLs masked, so nothing secret leaves."""
        return [SettingView(name, _shown(name, s.value), s.source, s.origin, s.error)
                for name, s in self.effective().items()]

    @query("settings.read")
    def price_card_view(self, actor: Actor) -> PriceCardView:
        """The price cards in use and the tag of the stored document (what If-Match names)."""
        stored = self._read((PRICE_CARDS,)).get(PRICE_CARDS)
        cards = self.get(PRICE_CARDS)
        return PriceCardView(price_card_document(cards.require()), cards.source, cards.origin, stored_tag(stored))

    @mutation("settings.edit")
    def change(self, actor: Actor, name: str, value: Any) -> SettingView:
        """Set one setting by name (None resets it to the default); the value is checked as in Settings."""
        setters: dict[str, Callable[[Any, Actor], Any]] = {
            CRITICAL_POLICY: self.set_critical_policy, PRICE_CARDS: self.set_price_cards,
            PROMETHEUS_URL: self.set_prometheus_url, RETENTION_DAYS: self.set_retention_days,
            PUBLIC_URL: self.set_public_url}
        if name not in setters:
            raise ValidationError(f"unknown setting {name!r}; known: {', '.join(SPECS)}")
        if value is None:
            self.reset(name, actor)
        else:
            setters[name](value, actor)
        now = self.get(name)
        return SettingView(name, _shown(name, now.value), now.source, now.origin, now.error)

    # ---- changing ----------------------------------------------------------------------
    def _write(self, name: str, stored_value: Any, shown_new: Any, actor: Actor,
               expected_tag: str | None = None) -> None:
        if self.uow_factory is None:
            raise ValidationError("settings cannot be changed without a database (PHOENIX_DATABASE_URL)")
        spec = SPECS[name]
        key = KEY_PREFIX + name
        with self.uow_factory() as uow:
            old = uow.settings.get(key)
            if expected_tag is not None and stored_tag(old) != expected_tag:
                raise StaleSetting(f"the stored {name.replace('_', ' ')} changed since that ETag "
                                   f"({expected_tag[:40]!r}); GET them again and decide")
            if old == stored_value:  # nothing changed: no write, the entry says so
                record(uow, f"settings.{name}", details={"setting": name, "unchanged": True})
                uow.commit()
                return
            if stored_value is None:
                uow.settings.delete(key)
            else:
                uow.settings.set(key, stored_value, by=actor.name)
            record(uow, f"settings.{name}", before=spec.audit(old), after=shown_new,
                   details={"setting": name, "old": spec.audit(old), "new": shown_new,
                            "overridden_by": ENV_VARS[name] if self.env.get(ENV_VARS[name], "").strip() else None})
            uow.commit()
        log.info("setting %s changed by %s", name, actor.name)

    @mutation("settings.edit")
    def set_critical_policy(self, text: str, actor: Actor) -> CriticalPolicy:
        policy = policy_from_text(text, "default critical policy")  # raises with every problem
        self._write(CRITICAL_POLICY, text, text, actor)
        return policy

    @mutation("settings.edit")
    def set_price_cards(self, data: Any, actor: Actor, expected_tag: str | None = None) -> list[PriceCard]:
        """``data``: the parsed card document ``{"cards": [...]}`` (dates may be date objects).

        ``expected_tag`` (an If-Match): write only if the stored document still has that tag,
        checked in the unit of work that writes."""
        cards = parse_price_cards(data, "price cards")
        doc = price_card_document(cards)  # JSON-ready: what is stored is exactly what was validated
        self._write(PRICE_CARDS, doc, _card_summary(doc), actor, expected_tag)
        return cards

    @mutation("settings.edit")
    def set_prometheus_url(self, url: str | None, actor: Actor) -> str | None:
        value = url_value(url, "Prometheus URL") if url not in (None, "") else None
        self._write(PROMETHEUS_URL, value, _mask(value), actor)
        return value

    @mutation("settings.edit")
    def set_retention_days(self, days: Any, actor: Actor) -> int:
        value = retention_value(days, "retention")
        self._write(RETENTION_DAYS, value, value, actor)
        return value

    @mutation("settings.edit")
    def set_public_url(self, url: str | None, actor: Actor) -> str | None:
        value = url_value(url, "public URL") if url not in (None, "") else None
        self._write(PUBLIC_URL, value, _mask(value), actor)
        return value

    @mutation("settings.edit")
    def reset(self, name: str, actor: Actor) -> None:
        """Forget the database value of ``name``: the built-in default (or the environment) applies."""
        if name not in SPECS:
            raise ValidationError(f"unknown setting {name!r}; known: {', '.join(SPECS)}")
        self._write(name, None, None, actor)

    @unauthenticated("settings.adopt")
    def adopt_legacy_files(self, data_dir: Path, actor: Actor = STARTUP) -> list[str]:
        """Move files an older Settings page wrote (``data_dir/price_cards.yaml``,
        ``critical_policy.yaml``) into the database, once, so no earlier edit is lost.

        A file is adopted only when the database holds no value for it; it is then renamed
        ``*.adopted``. A file that does not validate stays where it is; the returned
        messages say why (the caller logs them).
        """
        if self.uow_factory is None:
            return []
        stored, db_error = self._stored()
        if db_error:
            return []  # nothing can be adopted; whatever needs the database next says why, once
        notes: list[str] = []
        for name, filename in LEGACY_FILES.items():
            path = Path(data_dir) / filename
            if name in stored or not path.is_file():
                continue
            try:
                if name == PRICE_CARDS:
                    self.set_price_cards(yaml.safe_load(path.read_text(encoding="utf-8")), actor)
                else:
                    self.set_critical_policy(path.read_text(encoding="utf-8"), actor)
            except (ValidationError, yaml.YAMLError, OSError) as exc:
                reason = _error_text(exc) if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
                notes.append(f"{path} was not adopted into the database settings: {reason}")
                continue
            path.rename(path.with_name(filename + ".adopted"))
            notes.append(f"{path} adopted into the database settings (renamed {filename}.adopted)")
        return notes


def _card_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Price cards in an audit entry: each card's id with its model and params (nothing secret)."""
    cards = doc.get("cards")
    return {str(c.get("id")): {"model": c.get("model"), "params": c.get("params")}
            for c in (cards if isinstance(cards, list) else []) if isinstance(c, dict)}


def price_functions(cards: list[PriceCard], hosts: int = 1) -> dict[str, Callable[[float, float, float | None], float]]:
    """One $/month function per card, keyed by card id (what the experiment analysis prices with)."""
    def fn(card: PriceCard) -> Callable[[float, float, float | None], float]:
        return lambda series, dpm, bpm: monthly_cost(card, series, dpm, bpm, hosts).usd_per_month

    return {c.id: fn(c) for c in cards}
