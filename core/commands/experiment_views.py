"""How ``phoenix experiment`` prints experiments, from their JSON views.

One set of printers for the local commands and for ``--server`` (``core.commands.remote``):
both hand over the same JSON-ready dicts (``experiment_to_dict`` keys; rows as
``ExperimentSummary`` fields), so a script reads the same lines wherever the command ran.
A remote view may lack a part the server does not send (the event log, say): that part
is left out rather than guessed.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from core.domain.criteria import SuccessCriteria, Target
from core.domain.durations import format_duration
from core.domain.experiment import utcnow

DRY_RUN_NOTE = " (dry run: no collectors are started by this runtime)"
NO_EXPERIMENTS = "no experiments yet; create one with: phoenix experiment create --name NAME --baseline B --candidate C"


def when(value: Any) -> datetime | None:
    """A timestamp of a view (ISO text, a ``Z`` suffix allowed) as an aware datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def iso(value: Any) -> str | None:
    """One spelling of a timestamp (``…+00:00``) whether it came from the store or over JSON."""
    t = when(value)
    return t.isoformat() if t else None


def age(t: datetime) -> str:
    s = max(0, int((utcnow() - t).total_seconds()))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def print_created(d: dict[str, Any]) -> None:
    label = DRY_RUN_NOTE if d.get("dry_run") else ""
    print(f"created {d['id']} '{d['name']}': {d['baseline']} vs {d['candidate']}, state {d['state']}{label}")


def print_rerun(d: dict[str, Any], source_id: str) -> None:
    label = DRY_RUN_NOTE if d.get("dry_run") else ""
    print(f"created {d['id']} '{d['name']}' re-running {source_id}, state {d['state']}{label}")


def print_cancelled(d: dict[str, Any]) -> None:
    print(f"{d['id']} cancelled; the scheduler stops its collectors on its next tick")


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The ``experiment list`` table."""
    if not rows:
        print(NO_EXPERIMENTS)
        return
    print(f"{'ID':<13} {'STATE':<12} {'AGE':>5}  {'NAME':<24} BASELINE -> CANDIDATE")
    for r in rows:
        flag = "  [dry run]" if r.get("dry_run") else ""
        verdict = f"  {r['verdict']}" if r.get("verdict") else ""
        created = when(r["created_at"])
        assert created is not None  # every experiment has one
        print(f"{r['id']:<13} {r['state']:<12} {age(created):>5}  {r['name'][:24]:<24} "
              f"{r['baseline']} -> {r['candidate']}{verdict}{flag}")


def _criteria_line(data: dict[str, Any]) -> str:
    c = SuccessCriteria.from_dict(data)
    crit = [f"series -{c.min_series_reduction_pct:g}%", f"min samples {c.min_samples}"]
    if c.require_full_critical_coverage:
        crit.append("critical coverage 100%")
    if c.max_cpu_overhead_pct is not None:
        crit.append(f"cpu overhead <= {c.max_cpu_overhead_pct:g}%")
    if c.max_memory_overhead_mb is not None:
        crit.append(f"memory overhead <= {c.max_memory_overhead_mb:g} MB")
    if c.min_cost_reduction_pct is not None:
        crit.append(f"cost -{c.min_cost_reduction_pct:g}%")
    return ", ".join(crit)


def print_experiment(d: dict[str, Any]) -> None:
    """The ``experiment show`` page."""
    print(f"{d['id']}  {d['name']}{'  [dry run]' if d.get('dry_run') else ''}")
    print(f"  state:      {d['state']}")
    print(f"  owner:      {d['owner']}")
    if d.get("description"):
        print(f"  about:      {d['description']}")
    print(f"  pipelines:  {d['baseline']} (baseline) vs {d['candidate']} (candidate)")
    if "target" in d and "load_profile" in d:
        print(f"  target:     {Target.from_dict(d['target']).describe()}, load {d['load_profile']['name']}")
    print(f"  timing:     {format_duration(d['duration_s'])} every {format_duration(d['interval_s'])}")
    if "criteria" in d:
        print(f"  criteria:   {_criteria_line(d['criteria'])}")
    if "critical_policy" in d:
        rules = d["critical_policy"]
        print(f"  critical:   {'default policy' if rules is None else f'{len(rules)} custom rules'}")
    if d.get("error"):
        print(f"  error:      {d['error']}")
    if d.get("result"):
        print(f"  verdict:    {d['result'].get('verdict')}")
        for reason in d["result"].get("reasons", []) or []:
            print(f"              - {reason}")
    if "events" in d:
        print("  events:")
        if not d["events"]:
            print("    (none yet: waiting for the scheduler)")
        for ev in d["events"]:
            at = when(ev["at"])
            stamp = at.strftime("%Y-%m-%d %H:%M:%S") if at else ""
            print(f"    {stamp}  {ev['from']:>12} -> {ev['to']:<12} {ev['actor']}: {ev['reason']}")


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


def print_samples(samples: list[dict[str, Any]]) -> None:
    """The ``experiment samples`` table, oldest first."""
    if not samples:
        print("no samples yet: the scheduler records them while the experiment runs")
        return
    print(f"{'TIME':<19}  {'VARIANT':<9}  {'SERIES':>8}  {'POINTS':>8}  {'BYTES':>10}  {'CPU%':>6}  {'RSS MB':>7}  "
          "CRITICAL%")
    for s in samples:
        t = when(s["t"])
        print(f"{t.strftime('%Y-%m-%d %H:%M:%S') if t else '':<19}  {s['variant']:<9}  {s['series']:>8}  "
              f"{s['datapoints']:>8}  {s['bytes']:>10}  {_num(s.get('collector_cpu_pct')):>6}  "
              f"{_num(s.get('collector_rss_mb')):>7}  {_num(s.get('critical_coverage_pct'))}")


def sample_view(d: dict[str, Any]) -> dict[str, Any]:
    """The sample fields both the store and the API carry (``--json`` of ``experiment samples``)."""
    return {"variant": d["variant"], "t": iso(d["t"]), "series": d["series"], "datapoints": d["datapoints"],
            "bytes": d["bytes"], "collector_cpu_pct": d.get("collector_cpu_pct"),
            "collector_rss_mb": d.get("collector_rss_mb"), "critical_coverage_pct": d.get("critical_coverage_pct")}


def progress_line(experiment_id: str, text: str) -> str:
    """A ``run --wait`` / ``watch`` progress line (stderr): ``[HH:MM:SS] ID: text``."""
    return f"[{time.strftime('%H:%M:%S')}] {experiment_id}: {text}"


def transition_text(from_state: str, to_state: str, reason: str | None) -> str:
    why = f" ({reason})" if to_state in ("Failed", "Cancelled") and reason else ""
    return f"{from_state} -> {to_state}{why}"
