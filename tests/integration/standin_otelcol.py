"""Stand-in for otelcol-contrib in tests: ``standin_otelcol.py --config=file:PATH``.

Reads the rendered collector config it is given and serves, on the ports written there,
what a real collector would: the prometheus exporter's ``/metrics`` (this host's
processes, hostmetrics default metrics, scraped live at each request — as the real
exporter serves the last scrape) and the self-telemetry pull reader's ``/metrics``
(``otelcol_process_cpu_seconds_total``, ``otelcol_process_memory_rss`` of this process).
The pipeline's processors are not applied: both variants export everything.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import yaml

from core.engine.encoding import render_prometheus_text
from core.engine.expand import expand
from core.engine.frame import from_snapshot
from core.engine.hostsnapshot import snapshot_this_host
from core.engine.metrics import DEFAULT_METRICS


def exporter_body() -> bytes:
    series = expand(from_snapshot(snapshot_this_host(scrapes=1)), DEFAULT_METRICS).drop(columns=["host_name"])
    return render_prometheus_text(series).encode()


def telemetry_body() -> bytes:
    me = psutil.Process()
    cpu = sum(me.cpu_times()[:2])
    return (
        "# TYPE otelcol_process_cpu_seconds_total counter\n"
        f'otelcol_process_cpu_seconds_total{{service_name="otelcol-contrib"}} {cpu}\n'
        "# TYPE otelcol_process_memory_rss gauge\n"
        f'otelcol_process_memory_rss{{service_name="otelcol-contrib"}} {me.memory_info().rss}\n'
    ).encode()


def serve(host: str, port: int, body) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = body() if self.path.startswith("/metrics") else b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            return

    srv = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main(argv: list[str]) -> int:
    path = next(a.split("file:", 1)[1] for a in argv if a.startswith("--config=file:"))
    with open(path) as f:
        conf = yaml.safe_load(f)
    exp = next(v for k, v in conf["exporters"].items() if k.split("/")[0] == "prometheus")
    host, port = exp["endpoint"].rsplit(":", 1)
    tel = conf["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    serve(host, int(port), exporter_body)
    serve(tel["host"], int(tel["port"]), telemetry_body)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
