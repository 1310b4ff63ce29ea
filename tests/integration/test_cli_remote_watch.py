"""``phoenix --server URL experiment run --wait`` and ``experiment watch``: following the server's
event stream (``GET /api/v1/experiments/{id}/events``) to the verdict.

Needs the event stream route and a standing scheduler on the server side (memory runtime, so
an experiment of a few seconds reaches Completed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.live_phoenix import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("watch"), scheduler=True) as live:
        yield live


def test_run_wait_follows_the_stream_to_the_verdict(server: LiveServer) -> None:
    run = server.phoenix("experiment", "run", "--baseline", "process-baseline-v1", "--candidate", "process-topk-v1",
                         "--duration", "5s", "--interval", "1s", "--wait", timeout=120)
    assert run.returncode == 0, run.stderr  # Completed, as the local run --wait
    assert "Traceback" not in run.stderr
    eid = run.stdout.split()[0]
    assert re.fullmatch(r"exp-\S+", eid) and run.stdout.splitlines()[0] == f"{eid}  Completed", run.stdout
    assert "  verdict:            INCONCLUSIVE" in run.stdout.splitlines(), run.stdout
    assert re.search(rf"(?m)^\[\d\d:\d\d:\d\d\] {eid}: Analyzing -> Completed$", run.stderr), run.stderr
    assert re.search(rf"(?m)^\[\d\d:\d\d:\d\d\] {eid}: verdict INCONCLUSIVE$", run.stderr), run.stderr

    # the same experiment, watched from the server and from its database, ends in the same summary
    # (in this process: run --wait above is the subprocess run of this path)
    remote = server.cli("experiment", "watch", eid)
    local = server.cli("experiment", "watch", eid, remote=False)
    assert remote.returncode == local.returncode == 0
    assert remote.stdout == local.stdout == run.stdout
