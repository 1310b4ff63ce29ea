"""The process ``phoenix ui`` becomes: Phoenix's own set-up first, then Streamlit in this process.

Streamlit runs ``app/main.py`` only when a browser opens a session, so set-up done there alone
would leave the UI's ``/metrics`` (``PHOENIX_METRICS_PORT``) unserved, and its Prometheus job
``down``, until somebody visits. Starting it here serves it from the process's first second;
the page runs find it set up (``app.telemetry`` keeps every step idempotent).

    python -m app.serve run app/main.py --server.port=8501 ...   (the arguments of ``streamlit``)
"""

from __future__ import annotations

import sys


def main() -> None:
    from app import telemetry

    telemetry.setup_process()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
