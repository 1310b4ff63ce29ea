"""Every node type owns a one-line summary of its params (the canvas shows it under the title)."""

from __future__ import annotations

from typing import Any

import pytest

from core.catalog.base import SUMMARY_MAX, Param
from core.catalog.registry import REGISTRY, all_types


def _other_value(p: Param) -> Any:
    """A valid value for ``p`` different from its default."""
    if p.type == "enum":
        return next(c for c in p.choices or () if c != p.default)
    if p.type == "list[str]":
        pool = list(p.choices or ("alpha", "beta", "gamma"))
        return pool[:3] if pool[:3] != p.default else pool[:1]
    if p.type == "bool":
        return not p.default
    if p.type in ("int", "bytes"):
        return int(p.default) + 1 if p.maximum is None or p.default + 1 <= p.maximum else int(p.default) - 1
    if p.type == "float":
        step = 0.01 if (p.maximum or 2) <= 1 else 1.0
        return p.default + step if p.maximum is None or p.default + step <= p.maximum else p.default - step
    if p.type == "duration":
        return "123s"
    if p.type == "map":
        return {"process.cpu.utilization": True}
    return "example.org:4318"


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_summary_is_short_and_follows_the_params(type_name: str) -> None:
    t = REGISTRY[type_name]
    default = t.summary({})
    assert default.strip() and len(default) <= SUMMARY_MAX and "\n" not in default
    changed = {p.name: t.summary({p.name: _other_value(p)}) for p in t.params if not p.advanced}
    # A summary that never moves with the params tells the user nothing about this node.
    assert any(s != default for s in changed.values()), (type_name, default, changed)


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_summary_survives_params_that_do_not_validate(type_name: str) -> None:
    t = REGISTRY[type_name]
    junk = {p.name: object() for p in t.params}
    text = t.summary(junk)
    assert isinstance(text, str) and len(text) <= SUMMARY_MAX


def test_key_parameters_read_as_a_phrase() -> None:
    assert REGISTRY["topk"].summary({"k": 25, "by": "cpu"}) == "25 by cpu"
    assert REGISTRY["topk"].summary({"computed": {"cpu_utilization": 0.1}}) == "10 by memory · tuned"
    assert REGISTRY["resource_filter"].summary({"by": "memory", "memory_bytes": 512 * 1024**2}) == \
        "mem ≥ 512 MiB · drop the rest"
    assert REGISTRY["batch"].summary({}) == "8,192 items or 1s"


def test_endpoints_show_host_only_never_credentials() -> None:
    url = "https://user:s3cret@metrics.example.com:8443/api/v1/write?token=abc"
    for name in ("prometheusremotewrite", "otlphttp"):
        text = REGISTRY[name].summary({"endpoint": url})
        assert "metrics.example.com:8443" in text
        assert "s3cret" not in text and "abc" not in text and "user" not in text


def test_a_type_without_its_own_summary_names_its_first_params() -> None:
    class Bare(type(REGISTRY["debug"])):  # type: ignore[misc]
        params = (Param("alpha_rate", "int", 3, "a"), Param("beta", "bool", True, "b"),
                  Param("hidden", "int", 1, "c", advanced=True))

        def describe(self, p: dict[str, Any]) -> str:
            return super(type(REGISTRY["debug"]), self).describe(p)

    assert Bare().summary({}) == "alpha rate 3 · beta on"
    assert all(t.summary({}) for t in all_types())
