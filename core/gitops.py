"""GitOps: every saved pipeline version is a commit in a git repository.

Layout: ``pipelines/<name>/graph.json``, ``collector.yaml`` and ``k8s/*.yaml`` — what
a GitOps controller (Argo CD, Flux) would apply. The repository lives at
``PHOENIX_GITOPS_REPO`` (default ``./data/gitops``) and is initialised on first use.

The git CLI is run with argument lists only (never a shell string), and user text
(messages, author names) goes through arguments and environment variables, so it can
never be interpreted. ``InMemoryGitOps`` is the fake for unit tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from core.domain.errors import NotFoundError, PermanentError, TemporaryError, ValidationError

_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_SAFE_FILE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_EMAIL = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+@[^<>\s]+)>$")


@dataclass(frozen=True)
class CommitInfo:
    commit_id: str
    author: str
    email: str
    date: str
    message: str


class GitOps(Protocol):
    def commit_pipeline(self, name: str, files: dict[str, str], message: str, author: str) -> str: ...
    def history(self, name: str | None = None, limit: int = 50) -> list[CommitInfo]: ...
    def diff(self, old: str, new: str, name: str | None = None) -> str: ...
    def show(self, commit_id: str, name: str, rel_path: str) -> str: ...


def split_author(author: str) -> tuple[str, str]:
    """"Alice <alice@example.com>" → ("Alice", email); a bare name gets a local address."""
    author = (author or "").strip() or "anonymous"
    if len(author) > 200 or any(ord(c) < 0x20 for c in author):
        raise ValidationError("author must be a single line of at most 200 characters")
    try:
        author.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("author contains characters that are not valid text") from None
    m = _EMAIL.match(author)
    if m:
        return (m.group("name") or m.group("email").split("@")[0]), m.group("email")
    slug = re.sub(r"[^a-z0-9._-]+", "-", author.lower()).strip("-") or "anonymous"
    return author, f"{slug}@phoenix.local"


def _check(name: str, files: dict[str, str], message: str) -> None:
    if not _SAFE_NAME.match(name or ""):
        raise ValidationError(f"pipeline name {name!r} cannot be used as a directory name")
    for rel in files:
        if not _SAFE_FILE.match(rel) or ".." in rel.split("/"):
            raise ValidationError(f"file path {rel!r} is not a safe relative path")
    if not message or not message.strip():
        raise ValidationError("a commit message is required")
    if "\x00" in message:
        raise ValidationError("a commit message must not contain NUL characters")


def _check_dir(rel_dir: str, files: dict[str, str], message: str) -> None:
    parts = (rel_dir or "").split("/")
    if not rel_dir or not all(_SAFE_NAME.match(p) for p in parts):
        raise ValidationError(f"directory {rel_dir!r} is not a safe relative path")
    _check(parts[-1], files, message)


class GitRepo:
    """A real repository driven through the git CLI."""

    def __init__(self, path: str | Path, git: str = "git"):
        self.path = Path(path)
        self.git = git

    def _run(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
        try:
            proc = subprocess.run(  # noqa: S603 - argument list, no shell
                [self.git, "-C", str(self.path), *args],
                capture_output=True, text=True, env=full_env, timeout=60, check=False,
            )
        except FileNotFoundError:
            raise PermanentError("git is not installed; the GitOps repository needs the git CLI") from None
        except subprocess.TimeoutExpired:
            raise TemporaryError(f"git {args[0]} timed out in {self.path}") from None
        if check and proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            detail = msg[-1] if msg else f"exit {proc.returncode}"
            if "index.lock" in (proc.stderr or ""):
                raise TemporaryError(f"the GitOps repository is busy ({detail}); retry")
            raise PermanentError(f"git {args[0]} failed in {self.path}: {detail}")
        return proc.stdout

    def ensure(self) -> None:
        """Initialise the repository on first use (idempotent)."""
        if (self.path / ".git").exists():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self._run("init", "-q", "-b", "main")
        self._run("config", "commit.gpgsign", "false")
        (self.path / "README.md").write_text(
            "# Phoenix GitOps repository\n\nOne directory per pipeline under `pipelines/`; every saved "
            "version is a commit.\n", encoding="utf-8")
        self._run("add", "--", "README.md")
        self._commit("Initialise Phoenix GitOps repository", "Phoenix", "phoenix@phoenix.local")

    def _commit(self, message: str, name: str, email: str) -> str:
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": "Phoenix", "GIT_COMMITTER_EMAIL": "phoenix@phoenix.local"}
        self._run("commit", "-q", "--allow-empty", "--no-verify", "-m", message, env=env)
        return self._run("rev-parse", "HEAD").strip()

    def commit_pipeline(self, name: str, files: dict[str, str], message: str, author: str) -> str:
        _check(name, files, message)
        return self.commit_dir(f"pipelines/{name}", files, message, author)

    def commit_dir(self, rel_dir: str, files: dict[str, str], message: str, author: str) -> str:
        """Replace ``rel_dir`` (e.g. ``production/local``) with ``files`` and commit it."""
        _check_dir(rel_dir, files, message)
        author_name, email = split_author(author)
        self.ensure()
        target = self.path / rel_dir
        if target.exists():  # a version is the whole directory: stale manifests go
            shutil.rmtree(target)
        for rel, text in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        self._run("add", "-A", "--", rel_dir)
        return self._commit(message, author_name, email)

    def history(self, name: str | None = None, limit: int = 50) -> list[CommitInfo]:
        if not (self.path / ".git").exists():
            return []
        sep, end = "\x1f", "\x1e"
        args = ["log", f"-n{int(limit)}", f"--format=%H{sep}%an{sep}%ae{sep}%aI{sep}%B{end}"]
        if name is not None:
            if not _SAFE_NAME.match(name):
                raise ValidationError(f"pipeline name {name!r} is not valid")
            args += ["--", f"pipelines/{name}"]
        out = self._run(*args)
        commits = []
        for rec in out.split(end):
            rec = rec.strip("\n")
            if not rec:
                continue
            h, an, ae, date, body = rec.split(sep, 4)
            commits.append(CommitInfo(h, an, ae, date, body.strip()))
        return commits

    def diff(self, old: str, new: str, name: str | None = None) -> str:
        for c in (old, new):
            if not _COMMIT.match(c or ""):
                raise ValidationError(f"{c!r} is not a commit id")
        args = ["diff", "--no-color", old, new]
        if name is not None:
            args += ["--", f"pipelines/{name}"]
        return self._run(*args)

    def show(self, commit_id: str, name: str, rel_path: str) -> str:
        if not _COMMIT.match(commit_id or "") or not _SAFE_NAME.match(name) or not _SAFE_FILE.match(rel_path):
            raise ValidationError("commit id, pipeline name or file path is not valid")
        proc_out = self._run("show", f"{commit_id}:pipelines/{name}/{rel_path}", check=False)
        if not proc_out:
            raise NotFoundError(f"{rel_path} of {name} not found at {commit_id[:12]}")
        return proc_out


class InMemoryGitOps:
    """Fake for unit tests: commits are dict snapshots with deterministic ids."""

    def __init__(self) -> None:
        self.commits: list[tuple[str, str, dict[str, str], CommitInfo]] = []
        #: commit_dir commits (production/<target>): (id, directory, files, info)
        self.dir_commits: list[tuple[str, str, dict[str, str], CommitInfo]] = []

    def commit_pipeline(self, name: str, files: dict[str, str], message: str, author: str) -> str:
        _check(name, files, message)
        digest, info = self._fake_commit(len(self.commits), name, files, message, author)
        self.commits.append((digest, name, dict(files), info))
        return digest

    def commit_dir(self, rel_dir: str, files: dict[str, str], message: str, author: str) -> str:
        _check_dir(rel_dir, files, message)
        digest, info = self._fake_commit(len(self.dir_commits), rel_dir, files, message, author)
        self.dir_commits.append((digest, rel_dir, dict(files), info))
        return digest

    @staticmethod
    def _fake_commit(seq: int, where: str, files: dict[str, str], message: str,
                     author: str) -> tuple[str, CommitInfo]:
        """A deterministic commit id and its metadata, as git would report them."""
        author_name, email = split_author(author)
        digest = hashlib.sha1(f"{seq}|{where}|{message}|{sorted(files.items())}".encode(),
                              usedforsecurity=False).hexdigest()  # fmt: skip
        return digest, CommitInfo(digest, author_name, email, datetime.now(UTC).isoformat(), message)

    def history(self, name: str | None = None, limit: int = 50) -> list[CommitInfo]:
        hits = [info for _c, n, _f, info in reversed(self.commits) if name is None or n == name]
        return hits[:limit]

    def _files(self, commit_id: str, name: str | None) -> dict[str, str]:
        for c, n, files, _info in self.commits:
            if c == commit_id:
                return {f"pipelines/{n}/{k}": v for k, v in files.items()} if name in (None, n) else {}
        raise NotFoundError(f"no commit {commit_id}")

    def diff(self, old: str, new: str, name: str | None = None) -> str:
        import difflib

        a, b = self._files(old, name), self._files(new, name)
        out: list[str] = []
        for path in sorted(set(a) | set(b)):
            out += difflib.unified_diff(a.get(path, "").splitlines(True), b.get(path, "").splitlines(True),
                                        f"a/{path}", f"b/{path}")
        return "".join(out)

    def show(self, commit_id: str, name: str, rel_path: str) -> str:
        files = self._files(commit_id, name)
        key = f"pipelines/{name}/{rel_path}"
        if key not in files:
            raise NotFoundError(f"{rel_path} of {name} not found at {commit_id[:12]}")
        return files[key]
