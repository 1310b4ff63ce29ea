"""The server secret that signs share links (and, later, login sessions).

``PHOENIX_SECRET_KEY`` when set (at least 32 characters); otherwise 32 random bytes generated
on first use into ``data_dir/secret_key`` (mode 0600) and reused afterwards, so links survive
a restart. The secret never appears in a log line or an error message: errors name the file
or the variable, never the value.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from core.domain.errors import ValidationError


class HasDataDir(Protocol):
    """``core.settings.Settings`` or anything else that names the data directory."""

    @property
    def data_dir(self) -> Path: ...

ENV_VAR = "PHOENIX_SECRET_KEY"
FILE_NAME = "secret_key"
SECRET_BYTES = 32
MIN_ENV_CHARS = 32  # a shorter key is guessable enough to forge links


def server_secret(settings: HasDataDir, env: Mapping[str, str] | None = None) -> bytes:
    """The secret bytes: the environment's, else the data directory's (created once)."""
    env = os.environ if env is None else env
    raw = env.get(ENV_VAR, "").strip()
    if raw:
        if len(raw) < MIN_ENV_CHARS:
            raise ValidationError(f"{ENV_VAR} is too short: use at least {MIN_ENV_CHARS} random characters")
        return raw.encode("utf-8")
    return _file_secret(Path(settings.data_dir) / FILE_NAME)


def _file_secret(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise ValidationError(f"cannot read the server secret {path} ({exc.strerror or 'unreadable'})") from None
    if data:
        if len(data) < SECRET_BYTES:
            raise ValidationError(f"the server secret {path} is shorter than {SECRET_BYTES} bytes; delete it to "
                                  "generate a new one (existing share links stop working)")
        return data
    # Written to a private temporary file, then linked into place: two processes starting
    # together never see a half-written secret, and the loser of the race reads the winner's.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as exc:
        raise ValidationError(f"cannot create the server secret {path} ({exc.strerror or 'not writable'}); "
                              f"set {ENV_VAR} instead") from None
    return _file_secret(path)
