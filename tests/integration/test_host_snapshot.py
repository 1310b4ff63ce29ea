"""psutil snapshot of this machine and the fleet CLI writing real files."""

from __future__ import annotations

import os

import pytest

from core.cli import main
from core.cost import load_price_cards
from core.domain.errors import ValidationError
from core.engine.hostsnapshot import snapshot_this_host
from core.engine.snapshot import load_snapshot


def _comm() -> str:
    with open("/proc/self/comm", encoding="utf-8") as fh:
        return fh.read().strip()


def test_snapshot_of_this_host_has_this_process_with_its_kernel_name():
    df = snapshot_this_host(scrapes=2, interval_s=0.2)
    me = df[df["pid"] == os.getpid()]
    assert len(me) == 2 and me["scrape"].tolist() == [0, 1]
    row = me.iloc[-1]
    assert row["executable_name"] == _comm()
    assert row["parent_pid"] == os.getppid()
    assert row["executable_path"] == os.path.realpath("/proc/self/exe")
    assert row["memory_usage"] > 0 and row["memory_virtual"] >= row["memory_usage"]
    assert row["num_cpus"] == os.cpu_count()
    first, last = me.iloc[0], me.iloc[1]
    assert last["cpu_time_user"] + last["cpu_time_system"] >= first["cpu_time_user"] + first["cpu_time_system"]
    assert last["timestamp"] > first["timestamp"]
    assert df["host_name"].nunique() == 1
    assert (df.groupby("scrape").size() > 5).all()


def test_fleet_generate_cli_is_reproducible_and_loadable(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["fleet", "generate", "--nodes", "20", "--procs", "50", "--seed", "5", "--out", str(a)]) == 0
    assert main(["fleet", "generate", "--nodes", "20", "--procs", "50", "--seed", "5", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert "wrote" in capsys.readouterr().out
    df = load_snapshot(a)
    assert len(df) == 20 * 50 * 2 and df["host_name"].nunique() == 20


def test_fleet_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["fleet", "generate", "--nodes", "2", "--procs", "5", "--interval", "soon",
                 "--out", str(tmp_path / "x.csv")]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: --interval must be a duration like 60s, 5m or 1h (units ns, us, ms, s, m, h; combined as in 1m30s), "
        "got 'soon'")
    assert main(["fleet", "generate", "--nodes", "2", "--procs", "5", "--out", str(tmp_path / "no" / "x.csv")]) == 1
    assert "--out directory does not exist" in capsys.readouterr().err


def test_fleet_snapshot_cli_writes_this_host(tmp_path):
    out = tmp_path / "host.csv"
    assert main(["fleet", "snapshot", "--scrapes", "2", "--interval", "0.1s", "--out", str(out)]) == 0
    df = load_snapshot(out)
    assert os.getpid() in set(df["pid"])


def test_user_price_card_file(tmp_path):
    f = tmp_path / "cards.yaml"
    f.write_text(
        "cards:\n  - {id: dd, vendor: Datadog, model: datadog, source: 'https://x.test', as_of: 2026-01-02,\n"
        "     params: {usd_per_100_custom_metrics: 4, allotment_per_host: 100}}\n"
    )
    (card,) = load_price_cards(f)
    assert card.as_of == "2026-01-02" and card.params["usd_per_100_custom_metrics"] == 4
    f.write_text("cards: [{id: dd}]\n")
    with pytest.raises(ValidationError) as exc:
        load_price_cards(f)
    assert f"{f}: card 'dd': 'vendor' is required" in exc.value.problems


def test_parquet_snapshot_with_the_same_columns(tmp_path):
    from core.engine.fleet import generate_fleet

    frame = generate_fleet(3, 20, seed=1)
    path = tmp_path / "fleet.parquet"
    frame.drop(columns=["scrape"]).to_parquet(path)
    again = load_snapshot(path)
    assert again["pid"].tolist() == frame["pid"].tolist()
    assert again["scrape"].tolist() == frame["scrape"].tolist()
    assert again["command_line"].astype(str).tolist() == frame["command_line"].astype(str).tolist()


def test_fleet_generate_profile_and_scrapes(tmp_path):
    out = tmp_path / "churn.csv"
    assert main(["fleet", "generate", "--nodes", "4", "--procs", "100", "--scrapes", "3", "--interval", "30s",
                 "--profile", "process-churn", "--out", str(out)]) == 0
    df = load_snapshot(out)
    assert sorted(df["scrape"].unique()) == [0, 1, 2]
    gaps = df.groupby(["host_name", "scrape"], observed=True)["timestamp"].first().unstack().diff(axis=1)
    assert ((gaps.iloc[:, 1:] - 30).abs() < 0.05).all().all()
