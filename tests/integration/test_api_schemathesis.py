"""schemathesis over every operation of the REST API, on a real uvicorn server on loopback.

Two servers, one per role, so what the admin changes (cancels, reruns, promotions, new
pipeline versions) never shifts the ground under the viewer's cases. Each starts from the
same seeded database: pipelines with versions, experiments in every terminal state (the
Completed ones with a result), a Pending one, a share link and an API token per role.

Generation: positive and negative data, the explicit examples of the document, its
coverage phase and random fuzzing; ``derandomize`` with a fixed seed so a failure replays.
Checks (schemathesis.toml): no 5xx, status codes / content types / bodies as documented,
negative data rejected with a 4xx, positive data accepted, and no operation that answers
without its credential (``ignored_auth``).

Nothing is excluded. ``POST /auth/token`` runs too: schemathesis sends made-up names, so the
lockout only ever hits names that do not exist (the seeded accounts sign in with API tokens
and never through it). The rate limits are raised for the test server (create_app's
parameters) since a fuzzer is one client far above 20 requests/s; 429 stays documented and
tests/unit/test_api.py covers it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from core.bootstrap import Services, bootstrap
from core.commands.demo import seed as demo_seed
from core.domain.accounts import Role
from core.settings import Settings
from tests.actors import admin, viewer

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: Generation and checks: the repository's schemathesis.toml (also what ``st run`` reads there).
CONFIG_FILE = ROOT / "schemathesis.toml"
#: Examples per operation and generation mode; the file's default keeps this within minutes on 2 cores.
MAX_EXAMPLES = os.environ.get("PHOENIX_SCHEMATHESIS_EXAMPLES")


def _enabled_checks() -> list[Any]:
    """The checks schemathesis.toml enables (``[checks] enabled = false`` then one by one)."""
    table = tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))["checks"]
    names = [name for name, value in table.items() if isinstance(value, dict) and value.get("enabled")]
    return [getattr(schemathesis.checks, name) for name in names]


CHECKS = _enabled_checks()
REQUIRED_CHECKS = {"not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_schema_conformance", "negative_data_rejection", "positive_data_acceptance"}

# The test server: the app of ``phoenix api`` with rate limits far above what one fuzzer sends,
# and event streams that close after 0.2 s (as every stream does after an hour), so a case on the
# never-ending all-experiments feed (or a Pending experiment's stream) takes a fraction of a second,
# not the client's whole timeout. A stream checks its lifetime after each poll, so the poll
# interval is shortened to match (1 s in production): the answer is the same (the first chunk,
# then the close), and with 1 s the viewer's feed alone took ~68 s of its ~80 s.
SERVER = """
import sys, uvicorn
from core.api import events
from core.api.app import create_app
from core.bootstrap import bootstrap
events.POLL_S = 0.2
services = bootstrap()
app = create_app(services, rate_per_s=100_000.0, burst=100_000, stream_lifetime_s=0.2)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", server_header=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(svc: Services) -> dict[str, object]:
    """Data for the cases to meet: returns the known ids and one API token per role."""
    boss, reader = admin("st-admin"), viewer("st-viewer")
    svc.accounts.add_user(boss, boss.name, Role.ADMIN, "schemathesis admin password")
    svc.accounts.add_user(boss, reader.name, Role.VIEWER, "schemathesis viewer password")
    demo_seed(svc, experiments=12, versions=4, pipelines=2, seed=7)  # Completed (with results), Failed, Cancelled
    pending = svc.experiments.create(boss, name="pending for schemathesis", baseline="process-baseline-v1",
                                     candidate="process-topk-v1")
    ids = [pending.id] + [row.id for row in svc.experiments.list(boss, limit=50)]
    svc.shares.create(boss, "experiment", ids[-1], ttl=timedelta(days=1))
    tokens = {role.name: svc.accounts.create_token(role, "schemathesis", timedelta(days=1))[1] for role in (boss, reader)}
    return {"experiment_ids": sorted(set(ids)), "tokens": tokens}


@contextmanager
def _server(tmp: Path, role: str) -> Iterator[tuple[str, str, list[str]]]:
    """A seeded database and ``phoenix api``'s app on a free loopback port; yields (base URL, token, ids)."""
    url = f"sqlite:///{tmp / 'phoenix.db'}"
    env = {**os.environ, "PHOENIX_DATA_DIR": str(tmp), "PHOENIX_DATABASE_URL": url,
           "PHOENIX_GITOPS_REPO": str(tmp / "gitops"), "PHOENIX_RUNTIME": "memory",
           "PHOENIX_EMBEDDED_SCHEDULER": "0"}
    svc = bootstrap(Settings(data_dir=tmp, database_url=url, gitops_repo=tmp / "gitops", runtime="memory",
                             embedded_scheduler=False))
    try:
        seeded = _seed(svc)
    finally:
        svc.close()
    port = _free_port()
    log_path = tmp / "api.log"  # a file, not a pipe: a full pipe would stall the server mid-run
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the API did not become ready:\n{log_path.read_text()}")
            time.sleep(0.2)
        tokens: dict[str, str] = seeded["tokens"]  # type: ignore[assignment]
        yield base, tokens[role], seeded["experiment_ids"]  # type: ignore[misc]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        out = log_path.read_text()
        # the server's log must never hold a credential it was sent
        assert all(t not in out for t in seeded["tokens"].values())  # type: ignore[attr-defined]


def _config() -> schemathesis.Config:
    config = schemathesis.Config.from_path(CONFIG_FILE)
    if MAX_EXAMPLES:
        config.projects.get_default().generation.update(max_examples=int(MAX_EXAMPLES))
    return config


def test_the_config_runs_every_check_the_api_promises() -> None:
    assert {check.__name__ for check in CHECKS} >= REQUIRED_CHECKS
    project = _config().projects.get_default()
    assert {m.value for m in project.generation.modes} == {"positive", "negative"}
    assert "5xx" not in project.checks.positive_data_acceptance.expected_statuses


@contextmanager
def _schema(tmp_path_factory: pytest.TempPathFactory, role: str) -> Iterator[schemathesis.BaseSchema]:
    with _server(tmp_path_factory.mktemp(f"st-{role}"), role) as (base, token, ids):
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=_config())
        schema.config.update(base_url=base, headers={"Authorization": f"Bearer {token}"})
        KNOWN_IDS[role] = ids
        CREDENTIALS[role] = {"Authorization": f"Bearer {token}"}
        yield schema


#: Seeded experiment ids per role: positive cases name one of them half the time, or nearly
#: every case would be a 404 and nothing past the lookup would be exercised.
KNOWN_IDS: dict[str, list[str]] = {}
#: The role's credential, also handed to each call as its explicit headers: ``ignored_auth`` then
#: knows the credential is the caller's own (not one generated from the security schemes) and probes
#: every 2xx without it and with a bad one. Without this, a response read from a stream that never
#: ends (GET /events) lost track of where its Authorization came from and was judged "generated".
CREDENTIALS: dict[str, dict[str, str]] = {}


def _meet_the_data(case: schemathesis.Case, role: str) -> None:
    meta = getattr(case, "_meta", None)
    positive = meta is not None and meta.generation.mode is GenerationMode.POSITIVE
    value = case.path_parameters.get("experiment_id") if case.path_parameters else None
    if positive and isinstance(value, str):
        ids = KNOWN_IDS[role]
        pick = sum(value.encode()) % (2 * len(ids))  # deterministic: the same case picks the same id
        if pick < len(ids):
            case.path_parameters["experiment_id"] = ids[pick]


@pytest.fixture(scope="module")
def as_viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    with _schema(tmp_path_factory, "st-viewer") as schema:
        yield schema


@pytest.fixture(scope="module")
def as_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    with _schema(tmp_path_factory, "st-admin") as schema:
        yield schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's lazy schemas read and relabel ``node._nodeid``, which pytest 9.2 no
    # longer has (it keeps a structured id); give it one so its relabelling has something to read.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


viewer_schema = schemathesis.pytest.from_fixture("as_viewer")
admin_schema = schemathesis.pytest.from_fixture("as_admin")
HYPOTHESIS = settings(deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                             HealthCheck.function_scoped_fixture])


@viewer_schema.parametrize()
@HYPOTHESIS
def test_every_operation_as_viewer(case: schemathesis.Case) -> None:
    _meet_the_data(case, "st-viewer")
    case.call_and_validate(checks=CHECKS, timeout=30, headers=CREDENTIALS["st-viewer"])


@admin_schema.parametrize()
@HYPOTHESIS
def test_every_operation_as_admin(case: schemathesis.Case) -> None:
    _meet_the_data(case, "st-admin")
    case.call_and_validate(checks=CHECKS, timeout=30, headers=CREDENTIALS["st-admin"])
