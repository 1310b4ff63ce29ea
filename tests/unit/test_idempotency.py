"""Idempotency keys: replay, conflict, a day's memory, a bounded table, one create per racing key."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from core.api.idempotency import Idempotency, IdempotencyConflict


def test_replays_refuses_another_body_and_forgets_after_the_ttl() -> None:
    now = [0.0]
    keys = Idempotency(clock=lambda: now[0], ttl_s=100)
    made: list[int] = []

    def create() -> dict[str, Any]:
        made.append(1)
        return {"id": len(made)}

    assert keys.run("ops", "k", "body-a", create) == {"id": 1}
    assert keys.run("ops", "k", "body-a", create) == {"id": 1} and len(made) == 1
    assert keys.run("someone-else", "k", "body-a", create) == {"id": 2}  # keys are per account
    with pytest.raises(IdempotencyConflict):
        keys.run("ops", "k", "body-b", create)
    now[0] = 101
    assert keys.run("ops", "k", "body-b", create) == {"id": 3}  # expired: a new key


def test_the_table_is_bounded_least_recently_used_out() -> None:
    keys = Idempotency(max_keys=2)
    keys.put("u", "a", "d", {"n": 1})
    keys.put("u", "b", "d", {"n": 2})
    assert keys.get("u", "a", "d") == {"n": 1}  # used: "b" is now the oldest
    keys.put("u", "c", "d", {"n": 3})
    assert keys.get("u", "b", "d") is None and keys.get("u", "a", "d") == {"n": 1}
    assert len(keys._seen) == 2 and not keys._running


def test_racing_requests_with_one_key_create_once() -> None:
    keys = Idempotency()
    made: list[int] = []
    inside = threading.Event()

    def slow_create() -> dict[str, Any]:
        inside.set()
        time.sleep(0.2)  # the other requests arrive while this one is creating
        made.append(1)
        return {"id": "exp-1"}

    answers: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: answers.append(keys.run("ops", "k", "d", slow_create)))
    first.start()
    inside.wait(5)
    others = [threading.Thread(target=lambda: answers.append(keys.run("ops", "k", "d", slow_create)))
              for _ in range(4)]
    for t in others:
        t.start()
    for t in (first, *others):
        t.join(10)
    assert made == [1] and answers == [{"id": "exp-1"}] * 5 and not keys._running
