"""core.redact: the one masking helper for every URL Phoenix shows or logs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.redact import MASK, UNPARSEABLE, mask_url, redact
from core.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///data/phoenix.db", "sqlite:///data/phoenix.db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("postgresql+psycopg://postgres:pw@127.0.0.1:9/phoenix", "postgresql+psycopg://postgres:***@127.0.0.1:9/phoenix"),
        ("postgresql+psycopg://postgres@db/phoenix", "postgresql+psycopg://postgres@db/phoenix"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unencoded '@' in the password
        ("postgresql+psycopg://:pw@h/d?sslpassword=zz&application_name=x",
         "postgresql+psycopg://:***@h/d?sslpassword=***&application_name=x"),
        ("http://admin:s3cr%40t@prom:9090/prefix?a=1", "http://admin:***@prom:9090/prefix?a=1"),
        ("https://prom.example.com/?token=abc&step=5", "https://prom.example.com/?token=***&step=5"),
        ("http://localhost:9090", "http://localhost:9090"),
        ("host=db password=secret", UNPARSEABLE),  # a libpq DSN is not a URL: never echoed
        ("http://[::1", "http://[::1"),  # malformed, but nothing secret in it
        ("postgresql://u:pa/ss?x@h/db", "postgresql://u:***@h/db"),  # '/' and '?' unencoded in the password
        ("http://u:pa\tss@h/", UNPARSEABLE),  # control characters: never echoed
        ("", ""),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_settings_mask_both_urls() -> None:
    s = Settings(database_url="postgresql+psycopg://bob:hunter2@db/phx", prometheus_url="http://p:hunter3@prom:9090")
    assert s.masked_database_url() == "postgresql+psycopg://bob:***@db/phx"
    assert s.masked_prometheus_url() == "http://p:***@prom:9090"
    assert Settings().masked_prometheus_url() is None


def test_redact_scrubs_raw_and_decoded_secrets() -> None:
    url = "http://admin:s3cr%40t@prom:9090/x"
    text = f"GET {url} failed; auth s3cr@t and s3cr%40t refused"
    out = redact(text, url)
    assert "s3cr" not in out and out.count(MASK) == 3 and "admin:***@prom:9090" in out


_PASSWORD = st.text(st.characters(blacklist_characters="@/?#[]", blacklist_categories=("Cs",)), min_size=4)


@given(user=st.from_regex(r"[a-z]{1,8}", fullmatch=True), password=_PASSWORD,
       scheme=st.sampled_from(["postgresql+psycopg", "postgresql", "http", "https"]))
def test_no_password_survives_masking(user: str, password: str, scheme: str) -> None:
    url = f"{scheme}://{user}:{password}@host.example:5432/db"
    shown = mask_url(url)
    assert shown in (f"{scheme}://{user}:***@host.example:5432/db", UNPARSEABLE)
    assert password not in redact(f"could not connect to {url} ({password})", url)
