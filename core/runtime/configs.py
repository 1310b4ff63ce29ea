"""The rendered configs of an experiment's real collectors (tap, baseline, candidate) on this host.

Shared by the deployer (``core.runtime.local``: the first render) and the closed loop
(``core.runtime.closed_loop``: the candidate again, with re-tuned thresholds, on the same ports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TAP_PORT_NAMES = ("tap_telemetry", "tap_health", "input_metrics", "baseline_otlp", "candidate_otlp",
                  "baseline_metrics", "candidate_metrics", "baseline_telemetry", "candidate_telemetry",
                  "baseline_health", "candidate_health")


def ports_file(config_dir: Path, experiment_id: str) -> Path:
    return Path(config_dir) / f"otelcol-{experiment_id}-ports.json"


def render_otelcol_configs(experiment_id: str, pipelines: dict[str, Any], ports: dict[str, int],
                           roles: tuple[str, ...] = ("baseline", "candidate", "tap"), *,
                           check: bool = True) -> dict[str, str]:
    """Role → config text of the tap and both variants (``roles`` of them), each checked by the
    schemas and the binary unless ``check`` is off (the closed loop checks only what it restarts)."""
    from core.domain.errors import ValidationError
    from core.otelcol.validate import check_collector_yaml
    from core.render.tap import TapPorts, render_tap

    configs = render_tap(experiment_id, pipelines, TapPorts(**{n: int(ports[n]) for n in TAP_PORT_NAMES}))
    out = {}
    for role, rendered in (("baseline", configs.variants["baseline"]), ("candidate", configs.variants["candidate"]),
                           ("tap", configs.tap)):  # fmt: skip
        if role not in roles:
            continue
        problems = check_collector_yaml(rendered.text).problems if check else []
        if problems:
            raise ValidationError([f"{role} collector config: {p}" for p in problems])
        out[role] = rendered.text
    return out
