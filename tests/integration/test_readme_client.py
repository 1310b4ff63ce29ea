"""The README's "Use the API from Python" example, run exactly as written against a live server.

Needs the experiment event stream (``GET /api/v1/experiments/{id}/events``) and a standing
scheduler, which runs the experiment to its verdict (memory runtime: seconds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.live_phoenix import ROOT, live_server

MARKER = "<!-- readme-client-example -->"


def readme_example() -> str:
    """The python block right after the marker comment in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, "README.md must mark its client example once"
    after = text.split(MARKER, 1)[1].lstrip("\n")
    assert after.startswith("```python\n"), "the marker must sit right before the ```python fence"
    return after.removeprefix("```python\n").split("\n```", 1)[0] + "\n"


def test_the_example_is_short_and_uses_httpx_only() -> None:
    code = readme_example()
    assert len(code.splitlines()) <= 30
    imports = {m.group(1) for m in re.finditer(r"(?m)^(?:import|from) (\w+)", code)}
    assert imports == {"json", "os", "httpx"}


def test_the_readme_client_example_works_as_written(tmp_path: Path) -> None:
    with live_server(tmp_path, scheduler=True) as server:
        env = {**os.environ, "PHOENIX_API": server.url, "PHOENIX_TOKEN": server.token}
        run = subprocess.run([sys.executable, "-c", readme_example()], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"created exp-\S+", lines[0]), run.stdout
    # state changes before the stream opened may or may not be replayed; the last one comes live
    assert "Analyzing -> Completed" in lines, run.stdout
    verdicts = [line for line in lines if line.startswith("verdict: ")]
    # the memory runtime's analyzer gives INCONCLUSIVE with one reason
    assert verdicts == ["verdict: INCONCLUSIVE"], run.stdout
    assert lines[lines.index(verdicts[0]) + 1].startswith("  - "), run.stdout
