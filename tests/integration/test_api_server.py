"""``phoenix api`` for real: uvicorn on a free port over SQLite, driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.bootstrap import bootstrap
from core.settings import Settings
from tests.actors import ADMIN, add_account
from tests.conftest import free_port
from tests.live_phoenix import wait_answering

PASSWORD = "operator password 1"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    env = {**os.environ, "PHOENIX_DATA_DIR": str(tmp_path), "PHOENIX_DATABASE_URL": url,
           "PHOENIX_GITOPS_REPO": str(tmp_path / "gitops"), "PHOENIX_RUNTIME": "memory",
           "PHOENIX_EMBEDDED_SCHEDULER": "0"}
    svc = bootstrap(Settings(data_dir=tmp_path, database_url=url, gitops_repo=tmp_path / "gitops",
                             runtime="memory", embedded_scheduler=False))
    add_account(svc, ADMIN)
    svc.accounts.add_user(ADMIN, "ops", "operator", PASSWORD)
    svc.close()
    port = free_port()
    # --grpc-port 0: no gRPC, so parallel runs never race for its fixed default port (test_grpc.py covers it)
    proc = subprocess.Popen([sys.executable, "-m", "core", "api", "--port", str(port), "--grpc-port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_answering(base, proc, lambda: proc.stdout.read() if proc.stdout else "")
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status says why it stopped
    assert proc.returncode in (0, -signal.SIGTERM) and "Finished server process" in out, out
    assert PASSWORD not in out


def test_create_get_cancel_over_http(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as http:
        tok = http.post("/api/v1/auth/token", data={"username": "ops", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        exp = http.post("/api/v1/experiments", headers=h, json={
            "name": "over http", "baseline": "process-baseline-v1", "candidate": "process-topk-v1"}).json()
        got = http.get(f"/api/v1/experiments/{exp['id']}", headers=h)
        assert got.json()["state"] == "Pending"
        stale = http.post(f"/api/v1/experiments/{exp['id']}/cancel", headers={**h, "If-Match": '"99"'})
        assert stale.status_code == 412 and stale.headers["content-type"] == "application/problem+json"
        done = http.post(f"/api/v1/experiments/{exp['id']}/cancel", headers={**h, "If-Match": got.headers["ETag"]})
        assert done.status_code == 200 and done.json()["state"] == "Cancelled"
        assert "phoenix_api_requests_total" in http.get("/metrics").text


def test_the_client_example_in_docs_works_as_written(api: str) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "PHOENIX_API_URL": api, "PHOENIX_API_USER": "ops", "PHOENIX_API_PASSWORD": PASSWORD}
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split()
    assert lines[0].startswith("exp-") and lines[1:] == ["Pending", "Cancelled"]


def test_concurrent_cancels_with_one_etag_let_exactly_one_through(api: str) -> None:
    """Eight cancels race with the same ETag: one 200, the others 412 (the version moved on under
    them: If-Match is compared in the transaction that saves, and the optimistic lock catches a
    save that lands between that read and the write). Not 409: the precondition is checked first."""
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(base_url=api, timeout=30) as http:
        tok = http.post("/api/v1/auth/token", data={"username": "ops", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        for _ in range(3):
            exp = http.post("/api/v1/experiments", headers=h, json={
                "name": "race", "baseline": "process-baseline-v1", "candidate": "process-topk-v1"}).json()
            tag = http.get(f"/api/v1/experiments/{exp['id']}", headers=h).headers["ETag"]

            def cancel(_: int, eid: str = exp["id"], tag: str = tag) -> httpx.Response:
                with httpx.Client(base_url=api, timeout=30) as own:
                    return own.post(f"/api/v1/experiments/{eid}/cancel", headers={**h, "If-Match": tag})

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(cancel, range(8)))
            statuses = sorted(r.status_code for r in answers)
            assert statuses == [200] + [412] * 7, [r.text for r in answers]
            assert all(r.headers["content-type"] == "application/problem+json" for r in answers if r.status_code == 412)
            cancelled = http.get("/api/v1/experiments", headers=h, params={"state": "Cancelled"}).json()["items"]
            assert exp["id"] in [row["id"] for row in cancelled]


def test_snapshot_upload_report_download_and_paging_over_http(api: str) -> None:
    import io

    from core.engine.fleet import generate_fleet
    from core.engine.snapshot import write_snapshot

    buf = io.BytesIO()
    write_snapshot(generate_fleet(4, 40, seed=5, scrapes=2), buf)
    with httpx.Client(base_url=api, timeout=60) as http:
        tok = http.post("/api/v1/auth/token", data={"username": "ops", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        est = http.post("/api/v1/pipelines/estimate", headers=h, data={"pipeline": "process-topk-v1"},
                        files={"snapshot": ("fleet.csv", buf.getvalue(), "text/csv")})
        assert est.status_code == 200, est.text
        assert 0 < est.json()["series_out"] < est.json()["series_in"]
        ids = [http.post("/api/v1/experiments", headers=h, json={
            "name": f"page {i}", "baseline": "process-baseline-v1", "candidate": "process-topk-v1"}).json()["id"]
            for i in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            page = http.get("/api/v1/experiments", headers=h,
                            params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            seen += [row["id"] for row in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert seen == list(reversed(ids))  # newest first, each once
        report = http.get(f"/api/v1/experiments/{ids[0]}/report", headers=h, params={"format": "csv"})
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
        assert report.headers["content-disposition"] == f'attachment; filename="{ids[0]}.csv"'
