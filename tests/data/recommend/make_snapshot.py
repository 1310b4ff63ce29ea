"""Writes snapshot.csv: two hosts, 4 scrapes 15 s apart, a realistic process mix (run once; committed)."""

import csv
from pathlib import Path

PROCS = [  # pid, exe, command, command_line, owner, cpu/s, rss MiB
    (1, "systemd", "/sbin/init", "/sbin/init splash", "root", 0.01, 12),
    (412, "sshd", "sshd:", "sshd: /usr/sbin/sshd -D", "root", 0.0, 8),
    (530, "cron", "/usr/sbin/cron", "/usr/sbin/cron -f", "root", 0.0, 3),
    (601, "node_exporter", "/usr/local/bin/node_exporter", "/usr/local/bin/node_exporter --web.listen-address=:9100", "nobody", 0.02, 25),
    (700, "postgres", "postgres", "postgres -D /var/lib/postgresql/16/main", "postgres", 0.2, 300),
    (701, "postgres", "postgres:", "postgres: checkpointer", "postgres", 0.01, 40),
    (702, "postgres", "postgres:", "postgres: walwriter", "postgres", 0.02, 20),
    (800, "nginx", "nginx:", "nginx: master process /usr/sbin/nginx", "root", 0.0, 10),
    (801, "nginx", "nginx:", "nginx: worker process", "www-data", 0.3, 60),
    (802, "nginx", "nginx:", "nginx: worker process", "www-data", 0.25, 58),
    (900, "python3", "gunicorn", "gunicorn: master [api:app]", "app", 0.05, 90),
    (901, "python3", "gunicorn", "gunicorn: worker [api:app]", "app", 0.4, 220),
    (950, "python3", "celery", "celery -A tasks worker --loglevel=INFO", "app", 0.6, 310),
    (960, "python3", "python3", "python3 /opt/tools/report.py --daily", "app", 0.1, 80),
    (1000, "java", "java", "java -Xmx4g kafka.Kafka /etc/kafka/server.properties", "kafka", 1.2, 4096),
    (1100, "bash", "-bash", "-bash", "alice", 0.0, 5),
    (1200, "kworker/0:1-events", "", "", "root", 0.001, 0),
]
PROCS += [(1300 + i, f"kworker/{i}:2", "", "", "root", 0.001, 0) for i in range(6)]
PROCS += [(1400 + i, "php-fpm8.2", "php-fpm:", "php-fpm: pool www", "www-data", 0.05, 40) for i in range(8)]
PROCS += [(1500 + i, "bash", "-bash", "-bash", "bob", 0.0, 5) for i in range(3)]
rows = []
for h, host in enumerate(["web-1", "db-1"]):
    for s in range(4):
        ts = 1_000_000.0 + 15 * s
        for pid, exe, cmd, line, owner, cpu, rss in PROCS:
            base = 100.0 * (1 + h) + pid / 100
            user = base + cpu * 15 * s * (1 + h * 0.5)
            rows.append({
                "timestamp": ts, "host_name": host, "pid": pid, "parent_pid": 1 if pid > 1 else 0,
                "executable_name": exe, "executable_path": f"/usr/bin/{exe.split('/')[0]}" if cmd else "",
                "command": cmd, "command_line": line, "owner": owner,
                "cpu_time_user": round(user, 3), "cpu_time_system": round(user / 4, 3), "cpu_time_wait": 0.0,
                "memory_usage": rss * 1048576 + s * 4096 * (pid % 7), "memory_virtual": rss * 4 * 1048576,
                "disk_io_read": 1e6 * (pid % 13) + 1e4 * s, "disk_io_write": 5e5 * (pid % 11) + 2e4 * s * cpu,
                "num_cpus": 4,
            })
with (Path(__file__).parent / "snapshot.csv").open("w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
