"""Output paths of every writing command (issue 9), through ``core.cli.main``.

Empty paths, a file where a directory goes and the reverse, symbolic links (never written
through), unwritable places, stale manifests in ``DIR/k8s/``, and all-or-nothing writes.
The rules are in ``core/outputs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.cli import main
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot

TEMPLATE = "process-topk-v1"

def manifests(template: str) -> list[str]:
    """The k8s/ file names a render of ``template`` writes."""
    from core.catalog.templates import get_template
    from core.render.bundle import render_bundle

    return sorted(render_bundle(get_template(template)).manifests)



def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.strip()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path → bytes), links as their target text."""
    out: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def snapshot_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "fleet.csv"
    write_snapshot(generate_fleet(3, 20, seed=1, scrapes=2), path)
    return path


# --------------------------------------------------------------------------- pipeline render


def test_render_writes_the_bundle_and_leaves_no_staging(tmp_path, capsys):
    out = tmp_path / "out" / "deep"
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", str(out))[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["collector.yaml", "k8s"]
    assert sorted(p.name for p in (out / "k8s").iterdir()) == manifests(TEMPLATE)


def test_render_empty_out_is_refused(capsys):
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", "") == (1, "error: --out is empty: give a directory")


def test_render_into_an_existing_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", str(f)) == (
        1, f"error: --out {f} exists and is not a directory")
    assert f.read_text() == "keep"


@pytest.mark.parametrize("dangling", [False, True])
def test_render_through_a_symlinked_directory_is_refused(tmp_path, capsys, dangling):
    target = tmp_path / "real"
    if not dangling:
        target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    code, err = run(capsys, "pipeline", "render", TEMPLATE, "--out", str(link))
    assert code == 1
    assert err == (f"error: --out {link} is a symbolic link; Phoenix never writes through a link "
                   "(remove it or choose another path)")
    if dangling:
        assert not target.exists()
    else:
        assert list(target.iterdir()) == []


@pytest.mark.parametrize("what", ["k8s-file", "k8s-link", "collector-dir", "collector-link", "manifest-link"])
def test_render_refuses_a_wrong_kind_of_entry_inside_the_directory(tmp_path, capsys, what):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.yaml").write_text("secret")
    if what == "k8s-file":
        (out / "k8s").write_text("not a dir")
        expected = f"error: --out {out}: {out / 'k8s'} exists and is not a directory"
    elif what == "k8s-link":
        (out / "k8s").symlink_to(elsewhere)
        expected = f"error: --out {out / 'k8s'} is a symbolic link; Phoenix never writes through a link"
    elif what == "collector-dir":
        (out / "collector.yaml").mkdir()
        expected = f"error: --out {out / 'collector.yaml'} is a directory; expected a file"
    elif what == "collector-link":
        (out / "collector.yaml").symlink_to(elsewhere / "secret.yaml")
        expected = f"error: --out {out / 'collector.yaml'} is a symbolic link; Phoenix never writes through a link"
    else:
        (out / "k8s").mkdir()
        (out / "k8s" / "service.yaml").symlink_to(elsewhere / "secret.yaml")
        expected = f"error: --out {out / 'k8s' / 'service.yaml'} is a symbolic link; Phoenix never writes through"
    before = tree(out)
    code, err = run(capsys, "pipeline", "render", TEMPLATE, "--out", str(out))
    assert code == 1 and err.startswith(expected), err
    assert tree(out) == before  # nothing written
    assert (elsewhere / "secret.yaml").read_text() == "secret"


def test_render_removes_stale_manifests_a_previous_render_left(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", str(out))[0] == 0
    # A manifest an earlier render (another template or version) produced and this one does not.
    (out / "k8s" / "old-service.yaml").write_text((out / "k8s" / "service.yaml").read_text())
    (out / "k8s" / "legacy.yml").write_text("metadata:\n  labels:\n    app.kubernetes.io/part-of: phoenix\n")
    (out / "k8s" / "README.md").write_text("notes: not a manifest, left alone")
    assert run(capsys, "pipeline", "render", "process-baseline-v1", "--out", str(out))[0] == 0
    assert sorted(p.name for p in (out / "k8s").iterdir()) == sorted([*manifests("process-baseline-v1"), "README.md"])
    assert "process-baseline-v1" in (out / "collector.yaml").read_text()


def test_render_refuses_a_foreign_manifest_in_k8s_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", str(out))[0] == 0
    (out / "k8s" / "mine.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    before = tree(out)
    code, err = run(capsys, "pipeline", "render", "process-baseline-v1", "--out", str(out))
    assert code == 1
    assert err == (f"error: --out {out}: {out / 'k8s' / 'mine.yaml'} was not written by Phoenix; a render replaces "
                   f"every manifest in {out / 'k8s'} — move it away or render into another directory")
    assert tree(out) == before


def test_render_failure_midway_puts_everything_back(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", str(out))[0] == 0
    (out / "k8s" / "old-service.yaml").write_text((out / "k8s" / "service.yaml").read_text())
    before = tree(out)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 4:  # collector.yaml and two manifests are already in place
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    code, err = run(capsys, "pipeline", "render", "process-baseline-v1", "--out", str(out))
    assert (code, err) == (1, f"error: cannot write --out {out}: No space left on device")
    assert tree(out) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_render_failure_in_a_new_directory_leaves_no_directory(tmp_path, capsys, monkeypatch):
    out = tmp_path / "new" / "out"

    def broken(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken)
    assert run(capsys, "pipeline", "render", TEMPLATE, "--out", str(out))[0] == 1
    assert not (tmp_path / "new").exists()


def test_render_into_an_unwritable_place(capsys):
    # /proc refuses new entries even to root.
    code, err = run(capsys, "pipeline", "render", TEMPLATE, "--out", "/proc/phoenix-render")
    assert code == 1 and err.startswith("error: cannot write --out /proc/phoenix-render: ")
    assert not Path("/proc/phoenix-render").exists()


# --------------------------------------------------------------------------- pipeline export


def test_export_writes_and_creates_parents(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "p.yaml"
    assert run(capsys, "pipeline", "export", TEMPLATE, "--out", str(out))[0] == 0
    assert "process-topk-v1" in out.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.yaml"]


@pytest.mark.parametrize("case", ["empty", "directory", "link", "dangling-link", "parent-file", "device"])
def test_export_refuses_bad_destinations(tmp_path, capsys, case):
    target = tmp_path / "target.json"
    target.write_text("keep")
    out, expected = {
        "empty": ("", "error: --out is empty: give a file path"),
        "directory": (str(tmp_path), f"error: --out {tmp_path} is a directory; expected a file"),
        "link": (str(tmp_path / "l.json"), f"error: --out {tmp_path / 'l.json'} is a symbolic link"),
        "dangling-link": (str(tmp_path / "d.json"), f"error: --out {tmp_path / 'd.json'} is a symbolic link"),
        "parent-file": (str(target / "x.json"), f"error: --out {target / 'x.json'}: {target} is not a directory"),
        "device": ("/dev/null", "error: --out /dev/null exists and is not a regular file"),
    }[case]
    if case == "link":
        (tmp_path / "l.json").symlink_to(target)
    if case == "dangling-link":
        (tmp_path / "d.json").symlink_to(tmp_path / "nowhere.json")
    code, err = run(capsys, "pipeline", "export", TEMPLATE, "--out", out)
    assert code == 1 and err.startswith(expected), err
    assert target.read_text() == "keep"
    assert not (tmp_path / "nowhere.json").exists()


def test_export_failure_keeps_the_old_file_and_no_temp(tmp_path, capsys, monkeypatch):
    out = tmp_path / "p.json"
    out.write_text("old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    assert run(capsys, "pipeline", "export", TEMPLATE, "--out", str(out)) == (
        1, f"error: cannot write --out {out}: No space left on device")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_export_to_an_unwritable_place(capsys):
    code, err = run(capsys, "pipeline", "export", TEMPLATE, "--out", "/proc/phoenix.json")
    assert code == 1 and err.startswith("error: cannot write --out /proc/phoenix.json")


# --------------------------------------------------------------------------- experiment report


@pytest.mark.parametrize("case", ["empty", "directory", "link", "missing-parent", "parent-file"])
def test_report_refuses_bad_destinations_before_reading_anything(tmp_path, capsys, case):
    target = tmp_path / "r.html"
    target.write_text("keep")
    (tmp_path / "l.html").symlink_to(target)
    out, expected = {
        "empty": ("", "error: --out is empty: give a file path, or - for stdout"),
        "directory": (str(tmp_path), f"error: --out {tmp_path} is a directory; expected a file"),
        "link": (str(tmp_path / "l.html"), f"error: --out {tmp_path / 'l.html'} is a symbolic link"),
        "missing-parent": (str(tmp_path / "no" / "r.html"), f"error: --out directory does not exist: {tmp_path / 'no'}"),
        "parent-file": (str(target / "r.html"), f"error: --out {target / 'r.html'}: {target} is not a directory"),
    }[case]
    code, err = run(capsys, "experiment", "report", "exp-whatever", "--format", "html", "--out", out)
    assert code == 1 and err.startswith(expected), err
    assert target.read_text() == "keep"


# --------------------------------------------------------------------------- estimate --series-out


@pytest.mark.parametrize("case", ["empty", "directory", "link", "missing-parent"])
def test_series_out_refuses_bad_destinations_before_estimating(tmp_path, capsys, snapshot_csv, case):
    target = tmp_path / "s.csv"
    target.write_text("keep")
    (tmp_path / "l.csv").symlink_to(target)
    out, expected = {
        "empty": ("", "error: --series-out is empty: give a file path"),
        "directory": (str(tmp_path), f"error: --series-out {tmp_path} is a directory; expected a file"),
        "link": (str(tmp_path / "l.csv"), f"error: --series-out {tmp_path / 'l.csv'} is a symbolic link"),
        "missing-parent": (str(tmp_path / "no" / "s.csv"),
                           f"error: --series-out directory does not exist: {tmp_path / 'no'}"),
    }[case]
    code, err = run(capsys, "estimate", "--pipeline", TEMPLATE, "--snapshot", str(snapshot_csv), "--series-out", out)
    assert code == 1 and err.startswith(expected), err
    assert target.read_text() == "keep"


def test_series_out_is_not_written_when_the_estimate_fails(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,host_name\n1,h\n")
    out = tmp_path / "s.csv"
    code, err = run(capsys, "estimate", "--pipeline", TEMPLATE, "--snapshot", str(bad), "--series-out", str(out))
    assert code == 1 and err.startswith("error: missing columns: pid")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_series_out_replaces_an_existing_file(tmp_path, capsys, snapshot_csv):
    out = tmp_path / "s.csv"
    out.write_text("old")
    assert run(capsys, "estimate", "--pipeline", TEMPLATE, "--snapshot", str(snapshot_csv), "--series-out",
               str(out))[0] == 0
    assert out.read_text().startswith("host_name,metric,attributes,value")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


# --------------------------------------------------------------------------- fleet generate


@pytest.mark.parametrize("case", ["empty", "directory", "link", "device", "parent-file"])
def test_fleet_generate_refuses_bad_destinations(tmp_path, capsys, case):
    target = tmp_path / "f.csv"
    target.write_text("keep")
    (tmp_path / "l.csv").symlink_to(target)
    out, expected = {
        "empty": ("", "error: --out is empty: give a file path"),
        "directory": (str(tmp_path), f"error: --out {tmp_path} is a directory; expected a file"),
        "link": (str(tmp_path / "l.csv"), f"error: --out {tmp_path / 'l.csv'} is a symbolic link"),
        "device": ("/dev/null", "error: --out /dev/null exists and is not a regular file"),
        "parent-file": (str(target / "f.csv"), f"error: --out {target / 'f.csv'}: {target} is not a directory"),
    }[case]
    code, err = run(capsys, "fleet", "generate", "--nodes", "2", "--procs", "3", "--out", out)
    assert code == 1 and err.startswith(expected), err
    assert target.read_text() == "keep"


def test_fleet_generate_failure_leaves_nothing(tmp_path, capsys, monkeypatch):
    import core.engine.snapshot as snapshot

    def half_written(frame, path):
        Path(path).write_text("timestamp,host_name\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot, "write_snapshot", half_written)
    out = tmp_path / "f.csv"
    assert run(capsys, "fleet", "generate", "--nodes", "2", "--procs", "3", "--out", str(out)) == (
        1, f"error: cannot write --out {out}: No space left on device")
    assert list(tmp_path.iterdir()) == []
