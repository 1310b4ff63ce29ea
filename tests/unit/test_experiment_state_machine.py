"""The experiment state machine: every state × every event, and random event sequences."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.errors import InvalidTransitionError, ValidationError
from core.domain.experiment import ACTIVE_STATES, TERMINAL_STATES, TRANSITIONS, Experiment, State

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# The seed's table, written out independently of core.domain.experiment.TRANSITIONS.
ALLOWED = {
    ("Pending", "Initializing"),
    ("Pending", "Cancelled"),
    ("Initializing", "Running"),
    ("Initializing", "Failed"),
    ("Initializing", "Cancelled"),
    ("Running", "Analyzing"),
    ("Running", "Failed"),
    ("Running", "Cancelled"),
    ("Analyzing", "Completed"),
    ("Analyzing", "Failed"),
}

# Events = the named commands of the aggregate, and the state each one leads to.
EVENTS = {
    "start": State.INITIALIZING,
    "mark_running": State.RUNNING,
    "begin_analysis": State.ANALYZING,
    "complete": State.COMPLETED,
    "fail": State.FAILED,
    "cancel": State.CANCELLED,
}


def fire(exp: Experiment, event: str, now: datetime) -> None:
    if event == "complete":
        exp.complete({"verdict": "PROMOTE", "reasons": []}, actor="scheduler:t", now=now)
    elif event == "fail":
        exp.fail("boom", actor="scheduler:t", now=now)
    elif event == "cancel":
        exp.cancel(actor="alice", reason="no longer needed", now=now)
    else:
        getattr(exp, event)("scheduler:t", now)


def experiment_in(state: State) -> Experiment:
    exp = Experiment.create(name="e", baseline="process-baseline-v1", candidate="process-topk-v1", now=T0, id="exp-00000000")
    exp.state = state  # set directly: we test transitions *from* every state
    return exp


def test_the_table_matches_the_seed() -> None:
    actual = {(a.value, b.value) for a, nxt in TRANSITIONS.items() for b in nxt}
    assert actual == ALLOWED
    assert {s.value for s in TERMINAL_STATES} == {"Completed", "Failed", "Cancelled"}
    assert len(State) == 7


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("event", list(EVENTS))
def test_every_state_times_every_event(state: State, event: str) -> None:
    exp = experiment_in(state)
    before = copy.deepcopy(exp)
    now = T0 + timedelta(minutes=1)
    if (state.value, EVENTS[event].value) in ALLOWED:
        fire(exp, event, now)
        assert exp.state is EVENTS[event]
        assert len(exp.events) == 1 and exp.pending_events == exp.events
        ev = exp.events[0]
        assert (ev.from_state, ev.to_state, ev.at) == (state.value, EVENTS[event].value, now)
        assert ev.actor and ev.reason
        assert (exp.finished_at == now) == (exp.state in TERMINAL_STATES)
        if exp.state is State.RUNNING:
            assert exp.started_at == now
        if exp.state is State.FAILED:
            assert exp.error == "boom"
        if exp.state is State.COMPLETED:
            assert exp.result == {"verdict": "PROMOTE", "reasons": []}
    else:
        with pytest.raises(InvalidTransitionError, match=f"from {state.value} to {EVENTS[event].value}"):
            fire(exp, event, now)
        assert exp == before  # nothing changed, not even the event log


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("target", list(State), ids=lambda s: s.value)
def test_generic_transition_matches_table(state: State, target: State) -> None:
    exp = experiment_in(state)
    assert exp.can_transition(target) == ((state.value, target.value) in ALLOWED)


def test_unknown_state_name_is_a_clear_error() -> None:
    with pytest.raises(InvalidTransitionError, match="'Paused' is not an experiment state"):
        experiment_in(State.PENDING).transition("Paused", actor="x")


def test_happy_path_event_log() -> None:
    exp = experiment_in(State.PENDING)
    for i, ev in enumerate(["start", "mark_running", "begin_analysis", "complete"]):
        fire(exp, ev, T0 + timedelta(seconds=i))
    assert [(e.from_state, e.to_state) for e in exp.events] == [
        ("Pending", "Initializing"),
        ("Initializing", "Running"),
        ("Running", "Analyzing"),
        ("Analyzing", "Completed"),
    ]
    assert exp.events[-1].reason == "verdict PROMOTE"


def test_duration_elapsed_counts_from_running() -> None:
    exp = experiment_in(State.PENDING)
    assert not exp.duration_elapsed(T0 + timedelta(days=1))  # never started
    exp.start("s", T0)
    exp.mark_running("s", T0 + timedelta(seconds=10))
    assert not exp.duration_elapsed(T0 + timedelta(seconds=69))
    assert exp.duration_elapsed(T0 + timedelta(seconds=70))


def test_needs_teardown_only_when_terminal_and_deployed() -> None:
    exp = experiment_in(State.PENDING)
    exp.start("s", T0)
    exp.runtime_info = {"pids": [1]}
    assert exp.deployed and not exp.needs_teardown
    exp.cancel("alice", now=T0)
    assert exp.needs_teardown
    exp.runtime_info["torn_down"] = True
    assert not exp.needs_teardown


def test_create_collects_every_problem() -> None:
    from core.domain.criteria import SuccessCriteria, Timing

    with pytest.raises(ValidationError) as err:
        Experiment.create(name=" ", baseline="", candidate="x@0", timing=Timing(-1, 5),
                          criteria=SuccessCriteria(min_series_reduction_pct=120))
    text = str(err.value)
    assert "name must not be empty" in text
    assert "baseline must be a pipeline name" in text
    assert "candidate version in 'x@0' must be a positive whole number" in text
    assert "duration must be positive" in text
    assert "min series reduction must be between 0 and 100" in text


def test_min_samples_must_fit_the_run() -> None:
    from core.domain.criteria import SuccessCriteria, Timing

    with pytest.raises(ValidationError, match=r"min samples \(10\) is more than the run can collect \(6"):
        Experiment.create(name="e", baseline="a", candidate="b", timing=Timing(30, 5), criteria=SuccessCriteria(min_samples=10))


def test_critical_policy_rules_are_validated() -> None:
    ok = [{"match": "executable_name", "pattern": "^postgres$", "priority": "critical"}]
    assert Experiment.create(name="e", baseline="a", candidate="b", critical_rules=ok).critical_rules == ok
    with pytest.raises(ValidationError, match=r"critical policy\[0\]\.priority must be one of critical"):
        Experiment.create(name="e", baseline="a", candidate="b",
                          critical_rules=[{"match": "executable_name", "pattern": "x", "priority": "urgent"}])
    with pytest.raises(ValidationError, match="critical policy must be a list"):
        Experiment.create(name="e", baseline="a", candidate="b", critical_rules="postgres")  # type: ignore[arg-type]


def test_ids_are_short_and_unique() -> None:
    ids = {Experiment.create(name="e", baseline="a", candidate="b").id for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("exp-") and len(i) == 12 for i in ids)


# ---------------------------------------------------------------- property test

# Each example is a batch of independent sequences, so one run covers
# ≥ 25 × 420 = 10,500 random event sequences (and far more single events).
BATCH, EXAMPLES = 25, 420


def check_sequence(events: list[str]) -> None:
    exp = experiment_in(State.PENDING)
    now = T0
    accepted = 0
    for event in events:
        now += timedelta(seconds=1)
        before_state, before_len = exp.state, len(exp.events)
        was_terminal = exp.is_terminal
        try:
            fire(exp, event, now)
        except InvalidTransitionError:
            # rejected: nothing changed
            assert exp.state is before_state and len(exp.events) == before_len
            assert (before_state.value, EVENTS[event].value) not in ALLOWED
            continue
        accepted += 1
        assert not was_terminal, "a terminal state was left"
        assert (before_state.value, exp.state.value) in ALLOWED
        assert exp.state in State  # never an invalid state
    # The log is a consistent chain: starts at Pending, each event starts where the last ended.
    assert len(exp.events) == accepted <= 4
    chain = [State.PENDING.value] + [e.to_state for e in exp.events]
    assert [e.from_state for e in exp.events] == chain[:-1]
    assert exp.state.value == chain[-1]
    assert all(a.at < b.at for a, b in zip(exp.events, exp.events[1:], strict=False))
    # Only the last state of the chain can be terminal.
    assert all(State(s) in ACTIVE_STATES for s in chain[:-1])


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.lists(st.sampled_from(sorted(EVENTS)), min_size=1, max_size=20), min_size=BATCH, max_size=BATCH))
def test_random_event_sequences(batch: list[list[str]]) -> None:
    for events in batch:
        check_sequence(events)



def test_collectors_measure_in_every_active_state_but_analysis():
    from core.domain.experiment import MEASURING_STATES

    assert ACTIVE_STATES - {State.ANALYZING} == MEASURING_STATES
    # Measuring stops exactly when the run ends: Running's only non-terminal successor is Analyzing.
    assert {s for s in TRANSITIONS[State.RUNNING] if s in ACTIVE_STATES} == {State.ANALYZING}
