"""The estimate on accepted but extreme snapshots (issue 9; found by tests/fuzz/test_fuzz_snapshot.py).

Accepted input must never make the estimate fail on Phoenix's own output: values at the
documented bounds (rollup sums past int64), executable names the pipeline validation
refuses as learned names, snapshot file names the validation refuses as ``source``.
"""

from __future__ import annotations

import json
import math

import pytest

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.cli import main
from core.commands.estimate import _clean
from core.domain.user_text import text_problem
from core.engine.estimate import estimate
from core.engine.snapshot import MAX_BYTES, MAX_CPU_SECONDS, write_snapshot
from tests.unit.engine_data import GiB, proc, snapshot, two_scrapes


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_values_at_the_bounds_go_through_every_template(template):
    # 17 workers at 2^60 bytes each: the rollup's sums pass int64 (OTLP as_int saturates).
    rows = two_scrapes([proc("h", pid, "worker", rss=MAX_BYTES, vms=MAX_BYTES, read=MAX_BYTES, write=MAX_BYTES,
                             user=MAX_CPU_SECONDS - 100, system=MAX_CPU_SECONDS - 100) for pid in range(3, 20)],
                       cpu_delta={pid: 50.0 for pid in range(3, 20)})
    report = estimate(get_template(template), snapshot(rows)).report
    json.dumps(_clean(report), allow_nan=False)
    for exporter in report["exporters"].values():
        assert exporter["bytes_per_point"] is None or math.isfinite(exporter["bytes_per_point"])


def test_intelligent_never_learns_names_its_validation_refuses():
    # The busiest processes have names that cannot be kept by name: empty, a control
    # character, a collector variable reference. They are left to the rollup.
    hostile = ["", "bad\x1fname", "x${HOME}", "a$$b"]
    rows = two_scrapes(
        [proc("h", 10 + i, name, rss=4 * GiB) for i, name in enumerate(hostile)]
        + [proc("h", 20, "postgres-ish", rss=4 * GiB), *[proc("h", 30 + i, "small", rss=1024) for i in range(5)]],
        cpu_delta={10 + i: 8.0 for i in range(len(hostile))},
    )
    result = estimate(get_template("process-intelligent-v1"), snapshot(rows))
    learned = next(n for n in result.pipeline.chain() if n.type == "intelligent").params["learned"]
    assert learned["names"] == ["postgres-ish"]
    assert all(text_problem(n) is None for n in learned["names"])


def test_a_snapshot_file_name_with_dollars_is_a_plain_source(tmp_path, capsys):
    path = tmp_path / "fleet$${x}.csv"
    write_snapshot(snapshot(two_scrapes([proc("h", 1, "nginx"), proc("h", 2, "java", rss=2 * GiB)])), path)
    assert main(["estimate", "--pipeline", "process-topk-v1", "--snapshot", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "fleet$${x}.csv"  # the report names the file as it is
    assert report["tuned_params"]["topk"]["source"] == "fleet__{x}.csv"  # what the pipeline stores
