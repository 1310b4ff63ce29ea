"""``phoenix ui``: serve the Streamlit app from wherever Phoenix is installed.

``make run`` and the Docker image both start the app this way, so an installed package (not
a checkout) is what users run. Streamlit reads its config from the working directory's
``.streamlit/``, which an installed app has no say over, so the packaged
``app/streamlit_config.toml`` is passed as command-line options instead. For the same reason
the secrets file that configures single sign-on (Streamlit's ``[auth]`` section) is named by
``PHOENIX_SECRETS_FILE`` and passed as ``--secrets.files`` (docs/accounts.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from core.domain.errors import PermanentError

SECRETS_ENV = "PHOENIX_SECRETS_FILE"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ui", help="serve the web app (Streamlit)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    p.set_defaults(handler=_ui)


def app_dir() -> Path:
    """The installed ``app`` package's directory (found without importing Streamlit here)."""
    spec = importlib.util.find_spec("app")
    if spec is None or not spec.submodule_search_locations:
        raise PermanentError("the Phoenix web app (package 'app') is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def config_options(config: dict[str, Any], prefix: str = "") -> list[str]:
    """Flatten a Streamlit config TOML into ``--section.key=value`` options."""
    out: list[str] = []
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.extend(config_options(value, name))
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out.append(f"--{name}={text}")
    return out


def secrets_options(env: dict[str, str] | os._Environ[str]) -> list[str]:
    """``--secrets.files=PATH`` for ``PHOENIX_SECRETS_FILE``, after checking the file is TOML.

    Checked here so a typo fails at start with the setting's name instead of an SSO button
    that never appears; the errors name the path and position, never the file's content.
    """
    given = env.get(SECRETS_ENV, "").strip()
    if not given:
        return []  # Streamlit's defaults: ~/.streamlit/secrets.toml, ./.streamlit/secrets.toml
    path = Path(given).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PermanentError(f"{SECRETS_ENV}={given}: cannot read it ({exc.strerror or exc})") from None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message is the reason and position, no content
        raise PermanentError(f"{SECRETS_ENV}={given}: not valid TOML: {exc}") from None
    return [f"--secrets.files={path}"]


def streamlit_argv(host: str, port: int, env: dict[str, str] | os._Environ[str] | None = None) -> list[str]:
    root = app_dir()
    config = tomllib.loads((root / "streamlit_config.toml").read_text(encoding="utf-8"))
    return [
        sys.executable, "-m", "app.serve", "run", str(root / "main.py"),  # streamlit, after Phoenix's set-up
        *config_options(config), *secrets_options(os.environ if env is None else env),
        f"--server.address={host}", f"--server.port={port}",
    ]


def _ui(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise PermanentError(f"--port must be 1-65535, got {args.port}")
    argv = streamlit_argv(args.host, args.port)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # replaces this process: signals reach Streamlit directly
    return 0  # pragma: no cover - execv does not return
