"""Fleet simulator: realistic, reproducible process snapshots for any number of hosts.

``generate_fleet(nodes, procs, seed=...)`` returns a snapshot frame (the same shape
``core.engine.snapshot.load_snapshot`` returns) with ``procs`` processes per host per
scrape. Everything is vectorised over rows with numpy/pyarrow: no Python loop per
process, so 1,000 hosts × 500 processes × 2 scrapes take a few seconds.

What makes it realistic (and what the tests hold it to):
- a catalogue of real Linux process names with their owners, executable paths and
  command-line templates: databases, web servers and proxies, brokers, Kubernetes and
  container runtimes, infrastructure agents, application runtimes with worker pools
  (unique command lines), batch jobs, shells, and kernel threads (no executable, no
  command line, as the kernel reports them);
- each host gets a role (database, web, broker, app, batch, general) that shapes its
  mix; roughly 8% of processes are ones a default critical policy protects (databases,
  web servers/proxies, brokers, kubelet, container runtimes, sshd);
- heavy-tailed CPU (lognormal rates) and memory (lognormal RSS, page multiples);
- cumulative counters (CPU time, disk bytes, operations, faults, context switches)
  never decrease across scrapes for one pid, and Δcpu ≤ Δwall × num_cpus;
- short-lived processes (cron jobs, health checks, shells) that exist in exactly one
  scrape, always with fresh pids (a pid is never reused within a host);
- ``num_cpus`` per host from 4 to 64, host names ``node-0001``…

Same arguments and seed → identical frame (and identical CSV).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.domain.errors import ValidationError
from core.engine.snapshot import CSV_COLUMNS

# A fixed epoch (2026-11-27T00:00:00Z) rather than "now": the same seed must give the same file.
BASE_EPOCH = 1_795_996_800.0
PAGE = 4096
MAX_ROWS = 50_000_000  # refuse absurd sizes before allocating


@dataclass(frozen=True)
class Profile:
    """Shape of a fleet: how much churn and how many unique command lines."""

    name: str
    churn_share: float  # share of each scrape's processes that live only in that scrape
    worker_boost: float  # multiplier on the weight of worker kinds (unique command lines)
    description: str


PROFILES: dict[str, Profile] = {
    "realistic": Profile("realistic", 0.03, 1.0, "typical Linux servers: mostly long-lived daemons"),
    "high-cardinality": Profile(
        "high-cardinality", 0.05, 4.0, "many worker processes with unique command lines"
    ),
    "process-churn": Profile("process-churn", 0.30, 1.0, "a third of processes start and exit between scrapes"),
}

ROLES: tuple[str, ...] = ("general", "database", "web", "broker", "app", "batch")
ROLE_WEIGHTS = np.array([0.30, 0.12, 0.16, 0.07, 0.25, 0.10])
KTHREAD_SHARE = 0.30
CPU_CHOICES = np.array([4, 8, 16, 32, 64])
CPU_WEIGHTS = np.array([0.20, 0.35, 0.25, 0.15, 0.05])


@dataclass(frozen=True)
class Kind:
    """One kind of process. ``{n}`` in name/cmd is replaced by a per-process number.

    ``var``: "seq" numbers processes of this kind on a host 0, 1, 2…; "uniq" draws a
    large random id (a job id, a port, a request id) so command lines are unique.
    ``roles``: where this kind appears with its weight; "*" means every role.
    Rates are medians of lognormal distributions: CPU in cores, RSS in bytes, disk I/O
    in bytes per second; ``sigma`` widens the tail.
    """

    name: str
    path: str
    owner: str
    cmd: str
    roles: dict[str, float]
    cpu: float = 0.002
    cpu_sigma: float = 1.5
    rss: float = 20e6
    rss_sigma: float = 0.6
    vms_factor: float = 4.0
    io: float = 200.0
    threads: int = 1
    fds: int = 12
    wait_share: float = 0.0
    var: str | None = None
    critical: bool = False
    ephemeral: bool = False


def _k(name: str, path: str, owner: str, cmd: str, roles: dict[str, float], **kw: object) -> Kind:
    return Kind(name, path, owner, cmd, roles, **kw)  # type: ignore[arg-type]


ALL = "*"

# Singletons: exactly one per host (two sshd), before the sampled mix. pid 1 and 2 are set.
SINGLETONS: tuple[Kind, ...] = (
    _k("systemd", "/usr/lib/systemd/systemd", "root", "/sbin/init splash", {}, rss=12e6, threads=1, fds=120),
    _k("kthreadd", "", "root", "", {}, cpu=1e-5, rss=0, vms_factor=0, io=0, fds=0),
    _k("systemd-journal", "/usr/lib/systemd/systemd-journald", "root", "/lib/systemd/systemd-journald", {},
       rss=40e6, io=5000, fds=60),
    _k("systemd-udevd", "/usr/lib/systemd/systemd-udevd", "root", "/lib/systemd/systemd-udevd", {}, rss=8e6),
    _k("dbus-daemon", "/usr/bin/dbus-daemon", "messagebus",
       "@dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only", {},
       rss=5e6),
    _k("sshd", "/usr/sbin/sshd", "root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", {},
       rss=9e6, critical=True),
    _k("cron", "/usr/sbin/cron", "root", "/usr/sbin/cron -f -P", {}, rss=3e6),
    _k("rsyslogd", "/usr/sbin/rsyslogd", "syslog", "/usr/sbin/rsyslogd -n -iNONE", {}, rss=6e6, io=3000, threads=4),
    _k("chronyd", "/usr/sbin/chronyd", "_chrony", "/usr/sbin/chronyd -F 1", {}, rss=3e6),
    _k("containerd", "/usr/bin/containerd", "root", "/usr/bin/containerd", {}, cpu=0.02, rss=60e6,
       vms_factor=30, threads=20, fds=200, critical=True),
    _k("kubelet", "/usr/bin/kubelet", "root",
       "/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf "
       "--kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml "
       "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
       {}, cpu=0.04, rss=110e6, vms_factor=18, threads=25, fds=150, critical=True),
    _k("node_exporter", "/usr/local/bin/node_exporter", "nobody",
       "/usr/local/bin/node_exporter --path.rootfs=/host --web.listen-address=:9100", {},
       cpu=0.003, rss=25e6, vms_factor=30, threads=8),
    _k("otelcol-contrib", "/otelcol-contrib", "root", "/otelcol-contrib --config=/conf/collector.yaml", {},
       cpu=0.01, rss=150e6, vms_factor=12, threads=14),
    _k("agetty", "/usr/sbin/agetty", "root", "/sbin/agetty -o -p -- \\u --noclear tty1 linux", {}, rss=2e6),
)

CATALOGUE: tuple[Kind, ...] = (
    # kernel threads: no executable path, no command line, no memory
    _k("kworker/{n}:1-events", "", "root", "", {ALL: 6.0}, cpu=2e-4, cpu_sigma=2.0, rss=0, vms_factor=0,
       io=0, fds=0, var="seq"),
    _k("ksoftirqd/{n}", "", "root", "", {ALL: 1.5}, cpu=5e-4, rss=0, vms_factor=0, io=0, fds=0, var="seq"),
    _k("migration/{n}", "", "root", "", {ALL: 1.5}, cpu=1e-5, rss=0, vms_factor=0, io=0, fds=0, var="seq"),
    _k("cpuhp/{n}", "", "root", "", {ALL: 1.5}, cpu=1e-6, rss=0, vms_factor=0, io=0, fds=0, var="seq"),
    _k("irq/{n}-nvme0q1", "", "root", "", {ALL: 1.0}, cpu=1e-4, rss=0, vms_factor=0, io=0, fds=0, var="seq"),
    _k("jbd2/nvme0n1p{n}-8", "", "root", "", {ALL: 0.3}, cpu=1e-4, rss=0, vms_factor=0, io=20000, fds=0,
       var="seq", wait_share=0.1),
    # databases (critical)
    _k("postgres", "/usr/lib/postgresql/16/bin/postgres", "postgres",
       "postgres: 16/main: app appdb 10.0.{n}.12(5432) idle",
       {"database": 2.0, "general": 0.1}, cpu=0.01, cpu_sigma=2.0, rss=45e6, rss_sigma=0.8, vms_factor=6,
       io=20000, wait_share=0.03, var="uniq", critical=True),
    _k("mysqld", "/usr/sbin/mysqld", "mysql", "/usr/sbin/mysqld --basedir=/usr --datadir=/var/lib/mysql",
       {"database": 0.5}, cpu=0.3, rss=2.5e9, vms_factor=2, io=3e5, threads=40, fds=400, wait_share=0.03,
       critical=True),
    _k("redis-server", "/usr/bin/redis-server", "redis", "/usr/bin/redis-server 127.0.0.1:{n}",
       {"database": 0.4, "app": 0.1, "web": 0.1}, cpu=0.02, rss=300e6, rss_sigma=1.2, vms_factor=1.5,
       io=2000, threads=5, var="uniq", critical=True),
    _k("mongod", "/usr/bin/mongod", "mongodb", "/usr/bin/mongod --config /etc/mongod.conf",
       {"database": 0.3}, cpu=0.2, rss=3e9, vms_factor=1.8, io=2e5, threads=60, fds=500, critical=True),
    # web servers and proxies (critical)
    _k("nginx", "/usr/sbin/nginx", "www-data", "nginx: worker process",
       {"web": 1.6, "app": 0.1, "general": 0.1}, cpu=0.02, cpu_sigma=1.2, rss=15e6, vms_factor=4, io=500,
       critical=True),
    _k("nginx", "/usr/sbin/nginx", "root", "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;",
       {"web": 0.1}, cpu=1e-4, rss=8e6, critical=True),
    _k("envoy", "/usr/local/bin/envoy", "envoy", "/usr/local/bin/envoy -c /etc/envoy/envoy.yaml --base-id {n}",
       {"web": 0.3, "app": 0.1}, cpu=0.05, rss=120e6, vms_factor=15, threads=20, var="seq", critical=True),
    _k("haproxy", "/usr/sbin/haproxy", "haproxy", "/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid",
       {"web": 0.2}, cpu=0.03, rss=40e6, threads=4, critical=True),
    _k("httpd", "/usr/sbin/httpd", "apache", "/usr/sbin/httpd -DFOREGROUND",
       {"web": 0.6}, cpu=0.005, rss=20e6, vms_factor=12, critical=True),
    # brokers (critical)
    _k("java", "/usr/lib/jvm/java-17-openjdk/bin/java", "kafka",
       "java -Xmx6G -Xms6G -server -XX:+UseG1GC -cp /opt/kafka/libs/* kafka.Kafka /opt/kafka/config/server.properties",
       {"broker": 0.3}, cpu=0.8, rss=6.5e9, rss_sigma=0.2, vms_factor=1.6, io=4e6, threads=180, fds=3000,
       wait_share=0.02, critical=True),
    _k("beam.smp", "/usr/lib/erlang/erts-13.2/bin/beam.smp", "rabbitmq",
       "/usr/lib/erlang/erts-13.2/bin/beam.smp -W w -MBas ageffcbf -- -root /usr/lib/erlang -progname erl "
       "-- -noshell -s rabbit boot", {"broker": 0.2}, cpu=0.2, rss=400e6, vms_factor=6, threads=70,
       critical=True),
    _k("nats-server", "/usr/local/bin/nats-server", "nats", "/usr/local/bin/nats-server -c /etc/nats/nats.conf",
       {"broker": 0.2}, cpu=0.05, rss=60e6, vms_factor=20, threads=12, critical=True),
    # container runtime helpers (critical: container runtimes)
    _k("containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2", "root",
       "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id {n} -address /run/containerd/containerd.sock",
       {ALL: 0.35}, cpu=1e-3, rss=10e6, vms_factor=120, threads=11, var="uniq", critical=True),
    _k("dockerd", "/usr/bin/dockerd", "root", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock",
       {"batch": 0.1, "general": 0.05}, cpu=0.01, rss=90e6, vms_factor=25, threads=30, critical=True),
    # infrastructure agents and daemons
    _k("kube-proxy", "/usr/local/bin/kube-proxy", "root",
       "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf --hostname-override=node", {ALL: 0.05},
       cpu=0.005, rss=50e6, vms_factor=25, threads=10),
    _k("coredns", "/coredns", "root", "/coredns -conf /etc/coredns/Corefile", {"general": 0.3, "app": 0.2},
       cpu=0.004, rss=40e6, vms_factor=20),
    _k("fluent-bit", "/fluent-bit/bin/fluent-bit", "root", "/fluent-bit/bin/fluent-bit -c /fluent-bit/etc/fluent-bit.conf",
       {ALL: 0.6}, cpu=0.01, rss=30e6, io=50000, threads=6),
    _k("pause", "/pause", "65535", "/pause", {ALL: 1.2}, cpu=1e-6, rss=0.4e6, vms_factor=3, io=0, fds=3),
    _k("systemd", "/usr/lib/systemd/systemd", "ubuntu", "/lib/systemd/systemd --user", {ALL: 0.1}, rss=9e6),
    _k("snapd", "/usr/lib/snapd/snapd", "root", "/usr/lib/snapd/snapd", {ALL: 0.3}, rss=30e6, vms_factor=60),
    _k("multipathd", "/usr/sbin/multipathd", "root", "/sbin/multipathd -d -s", {ALL: 0.3}, rss=25e6),
    # application runtimes and worker pools (unique command lines)
    _k("java", "/usr/lib/jvm/java-21-openjdk/bin/java", "app",
       "java -Xms2g -Xmx4g -XX:+UseZGC -jar /opt/services/svc-{n}.jar --spring.profiles.active=prod",
       {"app": 4.0, "general": 1.0, "broker": 2.0, "database": 1.0}, cpu=0.08, cpu_sigma=1.8, rss=900e6, rss_sigma=0.7, vms_factor=5,
       io=20000, threads=90, fds=300, var="uniq"),
    _k("python3", "/usr/bin/python3.12", "app", "python3 /opt/app/worker.py --queue default --worker-id {n}",
       {ALL: 2.0, "app": 4.0, "batch": 4.0}, cpu=0.02, cpu_sigma=2.0, rss=120e6, rss_sigma=0.9,
       vms_factor=6, io=3000, threads=4, var="uniq"),
    _k("gunicorn", "/usr/bin/python3.12", "app", "/usr/bin/python3 /usr/local/bin/gunicorn app.wsgi:application "
       "--workers 8 --bind 0.0.0.0:8000 --name worker-{n}", {"app": 8.0, "web": 4.0, "general": 1.0, "broker": 1.0}, cpu=0.03, cpu_sigma=1.6,
       rss=180e6, rss_sigma=0.5, vms_factor=4, io=1000, threads=2, var="uniq"),
    _k("node", "/usr/bin/node", "node", "node --max-old-space-size=2048 /srv/app/dist/server.js --port {n}",
       {"app": 3.0, "web": 2.0, "database": 0.5}, cpu=0.04, cpu_sigma=1.6, rss=250e6, vms_factor=5, threads=11, var="uniq"),
    _k("php-fpm8.2", "/usr/sbin/php-fpm8.2", "www-data", "php-fpm: pool www",
       {"web": 6.0, "app": 1.0}, cpu=0.01, cpu_sigma=1.8, rss=40e6, vms_factor=6),
    _k("ruby", "/usr/bin/ruby3.2", "app", "puma 6.4.0 (tcp://0.0.0.0:{n}) [app]", {"app": 1.0, "web": 1.0},
       cpu=0.02, rss=300e6, vms_factor=4, threads=6, var="uniq"),
    _k("payments-api", "/usr/local/bin/payments-api", "app", "/usr/local/bin/payments-api --listen :{n}",
       {"app": 1.5}, cpu=0.03, rss=60e6, vms_factor=30, threads=12, var="uniq"),
    _k("celery", "/usr/bin/python3.12", "app", "/usr/bin/python3 -m celery -A tasks worker -n worker{n}@%h",
       {"batch": 6.0, "app": 1.0, "database": 1.5}, cpu=0.05, cpu_sigma=2.0, rss=150e6, vms_factor=5, io=5000, var="uniq"),
    # batch
    _k("spark-executor", "/usr/lib/jvm/java-17-openjdk/bin/java", "spark",
       "java -cp /opt/spark/jars/* org.apache.spark.executor.CoarseGrainedExecutorBackend --executor-id {n}",
       {"batch": 2.0}, cpu=0.6, cpu_sigma=1.0, rss=3e9, vms_factor=3, io=2e6, threads=60, var="uniq"),
    _k("ffmpeg", "/usr/bin/ffmpeg", "media", "ffmpeg -i /data/in/{n}.mp4 -c:v libx264 /data/out/{n}.mp4",
       {"batch": 0.8}, cpu=1.2, cpu_sigma=0.6, rss=400e6, io=5e6, threads=16, var="uniq", wait_share=0.01),
    # interactive / misc long-lived
    _k("bash", "/usr/bin/bash", "ubuntu", "-bash", {ALL: 0.6}, cpu=1e-5, rss=5e6),
    _k("tmux: server", "/usr/bin/tmux", "ubuntu", "tmux new -s ops{n}", {ALL: 0.1}, rss=4e6, var="seq"),
)

# Short-lived processes: one scrape only, fresh pid each time.
EPHEMERAL: tuple[Kind, ...] = (
    _k("sh", "/usr/bin/dash", "root", "/bin/sh -c /usr/local/bin/healthcheck --probe {n}", {ALL: 3.0},
       cpu=0.05, rss=1.5e6, var="uniq", ephemeral=True),
    _k("curl", "/usr/bin/curl", "app", "curl -sf http://127.0.0.1:8080/healthz?probe={n}", {ALL: 2.0},
       cpu=0.1, rss=8e6, var="uniq", ephemeral=True),
    _k("cron", "/usr/sbin/cron", "root", "/usr/sbin/CRON -f -P", {ALL: 1.0}, cpu=0.01, rss=3e6, ephemeral=True),
    _k("python3", "/usr/bin/python3.12", "app", "python3 /opt/jobs/report.py --run-id {n}", {ALL: 1.5},
       cpu=0.5, rss=60e6, var="uniq", ephemeral=True),
    _k("logrotate", "/usr/sbin/logrotate", "root", "/usr/sbin/logrotate /etc/logrotate.conf", {ALL: 0.3},
       cpu=0.2, rss=4e6, io=1e6, ephemeral=True),
    _k("grep", "/usr/bin/grep", "ubuntu", "grep -r ERROR /var/log/app/{n}.log", {ALL: 0.8}, cpu=0.6, rss=3e6,
       io=5e6, var="uniq", ephemeral=True),
    _k("runc", "/usr/bin/runc", "root", "runc --root /run/containerd/runc/k8s.io exec --process /tmp/runc-process{n}",
       {ALL: 0.4}, cpu=0.05, rss=10e6, var="uniq", ephemeral=True),
)

# What the simulator itself treats as "critical" when it sets the mix (for reporting; the
# authoritative policy lives in core.domain.critical). Matches executable name or command line.
CRITICAL_NAME_PATTERN = (
    r"^(postgres|mysqld|redis-server|mongod|nginx|envoy|haproxy|httpd|beam\.smp|nats-server|"
    r"kubelet|kube-proxy|containerd|containerd-shim.*|dockerd|runc|sshd|systemd)$"
)
CRITICAL_COMMAND_PATTERN = r"kafka\.Kafka"


def generate_fleet(
    nodes: int,
    procs: int,
    seed: int = 0,
    scrapes: int = 2,
    profile: str = "realistic",
    interval_s: float = 10.0,
) -> pd.DataFrame:
    """A snapshot frame of ``nodes`` hosts × ``procs`` processes × ``scrapes`` scrapes."""
    problems = []
    if nodes < 1:
        problems.append(f"nodes must be at least 1, got {nodes}")
    if procs < 1:
        problems.append(f"procs must be at least 1, got {procs}")
    if scrapes < 1:
        problems.append(f"scrapes must be at least 1, got {scrapes}")
    if not interval_s > 0:
        problems.append(f"interval must be positive, got {interval_s}")
    if profile not in PROFILES:
        problems.append(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if not problems and nodes * procs * scrapes > MAX_ROWS:
        problems.append(f"{nodes} × {procs} × {scrapes} rows is more than the simulator's limit of {MAX_ROWS:,}")
    if problems:
        raise ValidationError(problems)
    return _Generator(nodes, procs, seed, scrapes, PROFILES[profile], float(interval_s)).run()


class _Generator:
    """Builds the frame column by column; each step is vectorised over all rows."""

    def __init__(self, nodes: int, procs: int, seed: int, scrapes: int, profile: Profile, interval: float):
        self.nodes, self.procs, self.scrapes = nodes, procs, scrapes
        self.profile, self.interval = profile, interval
        self.rng = np.random.default_rng(seed)
        self.kinds: tuple[Kind, ...] = SINGLETONS + CATALOGUE + EPHEMERAL

    # ---- process table (one row per distinct process over the whole run)
    def run(self) -> pd.DataFrame:
        rng = self.rng
        n_single = min(len(SINGLETONS) + 1, self.procs)  # +1: a second sshd (a user session)
        n_eph = int(round(self.profile.churn_share * self.procs)) if self.scrapes > 1 else 0
        n_eph = min(n_eph, self.procs - n_single)
        n_long = self.procs - n_eph
        n_sampled = n_long - n_single

        self.host_cpus = rng.choice(CPU_CHOICES, size=self.nodes, p=CPU_WEIGHTS / CPU_WEIGHTS.sum())
        host_role = rng.choice(len(ROLES), size=self.nodes, p=ROLE_WEIGHTS / ROLE_WEIGHTS.sum())

        # Long-lived processes: singletons then a role-dependent sample.
        single_idx = np.array(list(range(len(SINGLETONS))) + [SINGLETONS.index(_sshd())])[:n_single]
        kind_long = np.empty((self.nodes, n_long), dtype=np.int64)
        kind_long[:, :n_single] = single_idx
        if n_sampled > 0:
            weights = self._role_weights()  # roles × catalogue
            for r in range(len(ROLES)):
                hosts = np.flatnonzero(host_role == r)
                if hosts.size:
                    p = weights[r]
                    draws = rng.choice(len(CATALOGUE), size=(hosts.size, n_sampled), p=p)
                    kind_long[hosts, n_single:] = draws + len(SINGLETONS)
        # Ephemeral processes: a fresh set per scrape.
        eph_w = np.array([k.roles[ALL] for k in EPHEMERAL])
        kind_eph = rng.choice(len(EPHEMERAL), size=(self.nodes, self.scrapes, n_eph), p=eph_w / eph_w.sum())
        kind_eph += len(SINGLETONS) + len(CATALOGUE)

        # Flatten: long-lived rows are present in every scrape, ephemeral in one.
        host_l = np.repeat(np.arange(self.nodes), n_long)
        kind_l = kind_long.ravel()
        host_e = np.repeat(np.arange(self.nodes), self.scrapes * n_eph)
        scrape_e = np.tile(np.repeat(np.arange(self.scrapes), n_eph), self.nodes)
        kind_e = kind_eph.ravel()
        proc_host = np.concatenate([host_l, host_e])
        proc_kind = np.concatenate([kind_l, kind_e])
        proc_only = np.concatenate([np.full(host_l.size, -1), scrape_e])  # -1: every scrape
        self._processes(proc_host, proc_kind, proc_only, n_long, n_eph)
        return self._rows()

    def _role_weights(self) -> np.ndarray:
        return role_weights(self.profile)

    def _processes(self, host: np.ndarray, kind: np.ndarray, only: np.ndarray, n_long: int, n_eph: int) -> None:
        rng = self.rng
        n = host.size
        kinds = self.kinds
        self.p_host, self.p_kind, self.p_only = host, kind, only

        # pids: strictly increasing per host in row order (long-lived first, then each
        # scrape's ephemerals), so a pid is never reused within a host.
        per_host = n_long + self.scrapes * n_eph
        order = np.lexsort((only, host))  # host-major; long-lived (-1) first, then scrape 0, 1…
        steps = rng.integers(1, 40, size=n)
        steps_sorted = steps[order]
        csum = np.cumsum(steps_sorted.reshape(self.nodes, per_host), axis=1).ravel()
        pid = np.empty(n, dtype=np.int64)
        pid[order] = 300 + csum
        # systemd is pid 1 and kthreadd pid 2 on every Linux host.
        pos_in_host = np.arange(n) % max(n_long, 1)
        pid[(only == -1) & (pos_in_host == 0)] = 1
        pid[(only == -1) & (pos_in_host == 1) & (n_long > 1)] = 2
        self.pid = pid

        # Parent: kernel threads → kthreadd (2); a long-lived worker pool → the first process
        # of its kind on the host (its master); everything else, short-lived jobs included,
        # → systemd (1).
        is_kthread = np.array([k.path == "" for k in kinds])[kind]
        frame = pd.DataFrame({"h": host, "k": kind, "pid": pid})
        master = frame.groupby(["h", "k"], sort=False)["pid"].transform("min").to_numpy()
        multi = np.array(
            [(k.var is not None or k.name in {"nginx", "php-fpm8.2", "httpd"}) and not k.ephemeral for k in kinds]
        )[kind]
        parent = np.where(multi & (master != pid), master, 1)
        parent = np.where(is_kthread, 2, parent)
        parent[pid <= 2] = 0
        self.parent = parent

        # numbers substituted into {n}: sequence within (host, kind) or a unique id
        seq = frame.groupby(["h", "k"], sort=False).cumcount().to_numpy()
        # "uniq": a port/job-id-like number, distinct within (host, kind) thanks to seq
        uniq = rng.integers(10_000, 60_000, size=n) + seq * 60_000
        self.var_n = np.where(np.array([k.var == "uniq" for k in kinds])[kind], uniq, seq)

        # ages and rates (lognormal: heavy tails)
        cpu_med = np.array([k.cpu for k in kinds])[kind]
        cpu_sig = np.array([k.cpu_sigma for k in kinds])[kind]
        cores = self.host_cpus[host].astype(np.float64)
        rate = cpu_med * np.exp(cpu_sig * rng.standard_normal(n))
        self.rate = np.minimum(rate, 0.95 * cores)
        eph = only >= 0
        age = np.where(
            eph,
            rng.uniform(0.05, 0.9, size=n) * self.interval,
            86_400 * np.exp(1.2 * rng.standard_normal(n)) * 3,
        )
        self.age0 = age
        lifetime_rate = self.rate * np.exp(0.3 * rng.standard_normal(n))
        total0 = np.minimum(lifetime_rate, 0.95 * cores) * age
        self.user_share = rng.beta(6, 2, size=n)
        self.wait_share = np.array([k.wait_share for k in kinds])[kind]
        self.cpu0 = total0

        rss_med = np.array([k.rss for k in kinds])[kind]
        rss_sig = np.array([k.rss_sigma for k in kinds])[kind]
        self.rss = rss_med * np.exp(rss_sig * rng.standard_normal(n))
        vms_f = np.array([k.vms_factor for k in kinds])[kind]
        self.vms = self.rss * vms_f * rng.uniform(0.8, 1.5, size=n) + np.where(vms_f > 0, 2e6, 0)
        io_med = np.array([k.io for k in kinds])[kind]
        self.io_rate_r = io_med * np.exp(1.5 * rng.standard_normal(n))
        self.io_rate_w = io_med * np.exp(1.5 * rng.standard_normal(n)) * 0.6
        thr = np.array([k.threads for k in kinds])[kind].astype(np.float64)
        self.threads = np.maximum(1, np.round(thr * np.exp(0.3 * rng.standard_normal(n))))
        fds = np.array([k.fds for k in kinds])[kind].astype(np.float64)
        self.fds = np.round(fds * np.exp(0.4 * rng.standard_normal(n)))
        self.host_offset = rng.uniform(0, self.interval, size=self.nodes)

    # ---- rows (one per process per scrape it is present in)
    def _rows(self) -> pd.DataFrame:
        rng = self.rng
        S = self.scrapes
        present_every = self.p_only == -1
        idx_long = np.flatnonzero(present_every)
        idx_eph = np.flatnonzero(~present_every)
        proc = np.concatenate([np.tile(idx_long, S), idx_eph])
        scrape = np.concatenate([np.repeat(np.arange(S), idx_long.size), self.p_only[idx_eph]])
        # rows in the snapshot frame's order (host, scrape, pid) from the start: no re-sort
        order = np.lexsort((self.pid[proc], scrape, self.p_host[proc]))
        proc, scrape = proc[order], scrape[order]
        host = self.p_host[proc]
        # one timestamp per host per scrape (with a few ms of jitter between scrapes)
        jitter = rng.uniform(-0.02, 0.02, size=(self.nodes, S))
        jitter[:, 0] = 0.0
        host_ts = (
            BASE_EPOCH + self.host_offset[:, None] + np.arange(S)[None, :] * self.interval + jitter
        )
        ts = np.round(host_ts[host, scrape], 3)
        # elapsed since the process's first scrape (0 for ephemerals: they live one scrape)
        first_scrape = np.where(present_every[proc], 0, scrape)
        dt = ts - np.round(host_ts[host, first_scrape], 3)
        n = proc.size

        # cumulative CPU: value at the first scrape plus, per scrape, rate × Δwall × busy
        # with busy in [0.3, 1]: never decreasing and Δcpu ≤ Δwall × rate ≤ Δwall × num_cpus
        n_proc = self.p_host.size
        step_wall = np.diff(np.round(host_ts, 3), axis=1, prepend=np.round(host_ts[:, :1], 3))  # nodes × S
        busy = rng.uniform(0.3, 1.0, size=(S, n_proc))
        used = np.cumsum(self.rate[None, :] * busy * step_wall[self.p_host].T, axis=0)  # S × procs
        elapsed_used = used[scrape, proc] - used[first_scrape, proc]
        total = self.cpu0[proc] + elapsed_used
        wait = total * self.wait_share[proc]
        user = (total - wait) * self.user_share[proc]
        system = total - wait - user
        # centiseconds, as /proc reports clock ticks (USER_HZ = 100); floor keeps monotonic
        user, system, wait = (np.floor(x * 100) / 100 for x in (user, system, wait))

        # memory: gauges with small wobble, in whole pages
        wobble = np.exp(0.01 * rng.standard_normal(n))
        rss = np.floor(self.rss[proc] * wobble / PAGE) * PAGE
        vms = np.maximum(rss, np.floor(self.vms[proc] * wobble / PAGE) * PAGE)
        life = self.age0[proc] + dt
        rd = np.floor(self.io_rate_r[proc] * life / PAGE) * PAGE
        wr = np.floor(self.io_rate_w[proc] * life / PAGE) * PAGE

        cols: dict[str, object] = {
            "scrape": scrape.astype(np.int64),
            "timestamp": ts,
            "host_name": self._host_names(host),
            "pid": self.pid[proc],
            "parent_pid": self.parent[proc],
        }
        cols.update(self._strings(proc))
        cols.update(
            {
                "cpu_time_user": user,
                "cpu_time_system": system,
                "cpu_time_wait": wait,
                "memory_usage": rss,
                "memory_virtual": vms,
                "disk_io_read": rd,
                "disk_io_write": wr,
                "threads": self.threads[proc],
                "open_file_descriptors": self.fds[proc],
                "disk_operations_read": np.floor(rd / 16384),
                "disk_operations_write": np.floor(wr / 16384),
                "paging_faults_major": np.floor(life * 1e-4 * (rss > 0)),
                "paging_faults_minor": np.floor(self.rss[proc] / PAGE * 2 + life * 0.5 * (rss > 0)),
                "context_switches_voluntary": np.floor(life * 0.8 + total * 500),
                "context_switches_involuntary": np.floor(total * 40),
                "num_cpus": self.host_cpus[host].astype(np.int64),
            }
        )
        return pd.DataFrame({c: cols[c] for c in ("scrape",) + CSV_COLUMNS})

    def _host_names(self, host: np.ndarray) -> pd.Categorical:
        names = [f"node-{i + 1:04d}" for i in range(self.nodes)]
        return pd.Categorical.from_codes(host, categories=names)

    def _strings(self, proc: np.ndarray) -> dict[str, pd.Categorical]:
        """String columns built once per process, then taken per row by categorical code."""
        kinds = self.kinds
        kind = self.p_kind
        var_n = pa.array(self.var_n.astype(np.int64))
        out: dict[str, pd.Categorical] = {}
        for col, attr in (
            ("executable_name", "name"),
            ("executable_path", "path"),
            ("command_line", "cmd"),
            ("owner", "owner"),
        ):
            templates = [getattr(k, attr) for k in kinds]
            out[col] = _fill_template(templates, kind, var_n)
        # process.command = zeroth string of the command line (first word), as the scraper reads it
        first_word = [k.cmd.split(" ", 1)[0] if k.cmd else "" for k in kinds]
        out["command"] = _fill_template(first_word, kind, var_n)
        return {
            c: pd.Categorical.from_codes(out[c].codes[proc], dtype=out[c].dtype)
            for c in ("executable_name", "executable_path", "command", "command_line", "owner")
        }


def _fill_template(templates: list[str], kind: np.ndarray, var_n: pa.Array) -> pd.Categorical:
    """Per-row strings from per-kind templates; ``{n}`` replaced by the row's number (vectorised)."""
    has_var = ["{n}" in t for t in templates]
    if not any(has_var):
        uniq = sorted(set(templates))
        code_of = {t: i for i, t in enumerate(uniq)}
        codes = np.array([code_of[t] for t in templates])[kind]
        return pd.Categorical.from_codes(codes, categories=uniq)
    parts = [t.split("{n}") for t in templates]
    prefix = pa.array([p[0] for p in parts])
    # Templates use {n} at most twice (ffmpeg in/out): middle and suffix cover both.
    middle = pa.array([p[1] if len(p) > 2 else "" for p in parts])
    suffix = pa.array([p[-1] if len(p) > 1 else "" for p in parts])
    twice = pa.array([len(p) > 2 for p in parts])
    once = pa.array(has_var)
    k = pa.array(kind)
    num = pc.cast(var_n, pa.string())
    row_once = pc.take(once, k)
    row_twice = pc.take(twice, k)
    empty = pa.scalar("", pa.string())
    n1 = pc.if_else(row_once, num, empty)
    n2 = pc.if_else(row_twice, num, empty)
    joined = pc.binary_join_element_wise(pc.take(prefix, k), n1, pc.take(middle, k), n2, pc.take(suffix, k), "")
    return pc.dictionary_encode(joined).to_pandas().array


def role_weights(profile: Profile) -> np.ndarray:
    """Probability of each catalogue kind per role (rows sum to 1).

    Kernel threads take a fixed ``KTHREAD_SHARE`` of the sampled mix on every host (their
    count follows the kernel and core count, not the workload); the rest follows the
    role's weights, with worker kinds boosted by the profile.
    """
    kthread = np.array([k.path == "" for k in CATALOGUE])
    w = np.zeros((len(ROLES), len(CATALOGUE)))
    for j, kind in enumerate(CATALOGUE):
        boost = profile.worker_boost if kind.var == "uniq" and not kind.critical else 1.0
        for r, role in enumerate(ROLES):
            w[r, j] = (kind.roles.get(role, 0.0) + kind.roles.get(ALL, 0.0)) * boost
    kt = w[:, kthread] / w[:, kthread].sum(axis=1, keepdims=True)
    rest = w[:, ~kthread] / w[:, ~kthread].sum(axis=1, keepdims=True)
    out = np.zeros_like(w)
    out[:, kthread] = KTHREAD_SHARE * kt
    out[:, ~kthread] = (1 - KTHREAD_SHARE) * rest
    return out


def _sshd() -> Kind:
    return next(k for k in SINGLETONS if k.name == "sshd")


def critical_share(frame: pd.DataFrame) -> float:
    """Share of rows the simulator's own critical hint matches (for reports and tests)."""
    name = frame["executable_name"].astype(str).str.fullmatch(CRITICAL_NAME_PATTERN)
    cmd = frame["command_line"].astype(str).str.contains(CRITICAL_COMMAND_PATTERN, regex=True)
    return float((name | cmd).mean())
