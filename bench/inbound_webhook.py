"""Inbound-webhook benchmark, run by hand: requests per second and latency of the signed
Twilio inbound webhook (``POST /webhooks/twilio/sms``) under gunicorn with 2 workers, next
to a trivial Flask endpoint under the same gunicorn set-up, both loaded by wrk.

    apt-get install -y wrk        # Debian's wrk 4 (C, LuaJIT scripting); the load generator
    createdb -h 127.0.0.1 -U postgres linkpay_bench
    python bench/inbound_webhook.py [--seconds 15] [--connections 64] [--workers 2]

PostgreSQL from LINKPAY_APP_DATABASE_URL (default the ``linkpay_bench`` database, migrated
here) and Redis from LINKPAY_APP_REDIS_URL (default db 11, flushed at the start and the
end: it is this benchmark's own), with ``app.production`` on, as in production. The
database may be shared with other benchmarks: this one only adds and deletes inbound events
whose MessageSid starts with ``SMbench``. No worker runs: the jobs the webhook queues (one
per text, carrying the form; the job is what stores the text) wait in Redis until the
flush, and are what the script counts to check that every answered text was taken.

A Python load generator would be the bottleneck on two cores, so wrk sends the load: every
request is prepared here first (a unique MessageSid each, the X-Twilio-Signature computed
with the configured auth token over the form and ``app.base_url`` + path) and written to one
file per wrk thread, which a small Lua script reads and cycles through. The trivial endpoint
(a bare Flask app answering a constant, in its own ``gunicorn --workers 2``) gets the same
requests. Each endpoint is warmed up for 2 s, then loaded for ``--seconds`` at
``--connections`` concurrent connections; the trivial one first, then the webhook.

Targets: >= 1,000 requests/s, >= 0.4x the trivial endpoint, p99 <= 50 ms at 64 connections.
By Little's law a closed loop of 64 clients waits 64 / rate seconds on average, so p99
<= 50 ms needs well over 1,280 requests/s.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# Run as a script from anywhere: the repository root must come before an editable
# install's finder, which may predate packages added since (webhooks/, jobs/).
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.setdefault(
    "LINKPAY_APP_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/linkpay_bench"
)
REDIS_URL = os.environ.setdefault("LINKPAY_APP_REDIS_URL", "redis://127.0.0.1:6379/11")

from flask import Flask  # noqa: E402

PATH = "/webhooks/twilio/sms"
TRIVIAL_PATH = "/trivial"
BASE_URL = "https://pay.springfieldwtr.org"
AUTH_TOKEN = "bench-twilio-auth-token"
ACCOUNT_SID = "AC" + "be9c" * 8
SERVICE_NUMBER = "+16025550199"
SID_PREFIX = "SMbench"
# What customers text, in the proportions of a billing day; STOP (handled inside the
# request, and rare) is left out so every request takes the same path.
BODIES = ("PAY", "PAY 50", "BAL", "HELP", "LINK", "PAGAR 25.50", "SALDO", "482913")
WARM_UP_SECONDS = 2
# Prepared requests per second of load: more than two cores can serve, so no MessageSid
# is sent twice (a repeat would take the cheaper duplicate path).
REQUESTS_PER_SECOND_PREPARED = 5000
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

WRK_SCRIPT = r"""
-- Each wrk thread reads its own file of prepared requests ("form<TAB>signature" per line).
local threads = 0
function setup(thread)
  thread:set("part", threads)
  threads = threads + 1
end

local prepared = {}
local index = 0
function init(args)
  local path, prefix = args[1], args[2]
  for line in io.lines(prefix .. "." .. part) do
    local form, signature = line:match("^([^\t]*)\t(.*)$")
    prepared[#prepared + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature,
    }, form)
  end
end

function request()
  index = index % #prepared + 1
  return prepared[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int
    socket_errors: int
    server_cpu_seconds: float
    database_cpu_seconds: float  # PostgreSQL backends serving this benchmark's database
    box_busy: float  # share of all CPUs busy during the run, 0..1
    run_token: str  # in the MessageSid of every request of the measured run

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds / max(self.requests, 1) * 1000

    @property
    def database_ms_per_request(self) -> float:
        return self.database_cpu_seconds / max(self.requests, 1) * 1000


def trivial_app() -> Flask:
    """The baseline: Flask answering a constant, nothing read, nothing stored."""
    app = Flask("trivial")

    @app.post(TRIVIAL_PATH)
    def trivial():
        return EMPTY_TWIML, 200, {"Content-Type": "text/xml"}

    return app


def main() -> None:
    args = parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    from linkpay.cli.db import upgrade

    upgrade(DATABASE_URL)
    env = server_environment()
    forget_earlier_runs()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        script = work / "cycle.lua"
        script.write_text(WRK_SCRIPT)
        load = os.getloadavg()
        with gunicorn("bench.inbound_webhook:trivial_app()", args, env, work) as url:
            trivial = measure("trivial Flask endpoint", url + TRIVIAL_PATH, args, script, work)
        with gunicorn(args.app, args, env, work) as url:
            webhook = measure("signed inbound webhook", url + PATH, args, script, work)
        stored = count_stored(webhook.run_token)
        forget_earlier_runs()
    report(args, trivial, webhook, stored, load)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument(
        "--app",
        default="linkpay:create_app()",
        help="the WSGI app gunicorn serves for the webhook (to size a change before making it)",
    )
    parser.add_argument(
        "--worker-class", default="sync", help="gunicorn worker class (the Procfile's: sync)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (> 1: gthread)"
    )
    return parser.parse_args()


def server_environment() -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LINKPAY_")},
        "LINKPAY_APP_DATABASE_URL": DATABASE_URL,
        "LINKPAY_APP_REDIS_URL": REDIS_URL,
        "LINKPAY_APP_SECRET_KEY": "bench-secret-key",
        "LINKPAY_APP_BASE_URL": BASE_URL,
        "LINKPAY_APP_PRODUCTION": "true",
        "LINKPAY_SMS_PROVIDER": "twilio",
        "LINKPAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "LINKPAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "LINKPAY_TWILIO_FROM_NUMBER": SERVICE_NUMBER,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


class gunicorn:  # noqa: N801 (used as a context manager, like a function)
    """``gunicorn --workers N`` serving ``target`` on a free port until the block ends."""

    def __init__(self, target: str, args: argparse.Namespace, env: dict, work: Path):
        self.target, self.args, self.env, self.work = target, args, env, work

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = open(self.work / "gunicorn.log", "a")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(self.args.workers),
                "--worker-class",
                self.args.worker_class,
                "--threads",
                str(self.args.threads),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--backlog",
                "2048",
                self.target,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{self.port}"
        wait_until_listening(self.port, self.process)
        return url

    def workers(self) -> list[int]:
        return child_pids(self.process.pid)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def wait_until_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited at start-up; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(1.0)  # the workers boot after the master listens
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start listening within 30 s")


def measure(name: str, url: str, args: argparse.Namespace, script: Path, work: Path) -> Run:
    server_pid = server_master(url)
    warm, _ = prepare(work / "warm", args.wrk_threads, WARM_UP_SECONDS)
    wrk(url, args, script, warm, WARM_UP_SECONDS)
    loaded, run_token = prepare(work / "load", args.wrk_threads, args.seconds)
    cpu_before, busy_before = tree_cpu_seconds(server_pid), box_cpu()
    database_before = database_cpu_seconds()
    out = wrk(url, args, script, loaded, args.seconds)
    cpu = tree_cpu_seconds(server_pid) - cpu_before
    database_cpu = database_cpu_seconds() - database_before
    busy = [after - before for after, before in zip(box_cpu(), busy_before, strict=True)]
    result = dict(re.findall(r"(\w+)=(\d+)", out.split("RESULT", 1)[1]))
    return Run(
        name=name,
        requests=int(result["requests"]),
        seconds=int(result["duration_us"]) / 1e6,
        p50_ms=int(result["p50_us"]) / 1000,
        p99_ms=int(result["p99_us"]) / 1000,
        max_ms=int(result["max_us"]) / 1000,
        status_errors=int(result["status_errors"]),
        socket_errors=int(result["socket_errors"]),
        server_cpu_seconds=cpu,
        database_cpu_seconds=database_cpu,
        box_busy=busy[0] / max(busy[1], 1),
        run_token=run_token,
    )


def prepare(prefix: Path, parts: int, seconds: int) -> tuple[Path, str]:
    """Write signed inbound texts, each with its own MessageSid, one file per wrk thread."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    url = BASE_URL + PATH
    count = seconds * REQUESTS_PER_SECOND_PREPARED // parts
    run = secrets.token_hex(4)
    for part in range(parts):
        with open(f"{prefix}.{part}", "w") as out:
            for n in range(count):
                sid = f"{SID_PREFIX}{run}{part:02d}{n:019d}"  # 34 characters, like Twilio's
                form = inbound_form(sid, n)
                signature = validator.compute_signature(url, form)
                out.write(f"{urlencode(form)}\t{signature}\n")
    return prefix, run


def inbound_form(sid: str, n: int) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "ToState": "AZ",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "PHOENIX",
        "FromZip": "85004",
        "SmsSid": sid,
        "FromState": "AZ",
        "SmsStatus": "received",
        "FromCity": "PHOENIX",
        "Body": BODIES[n % len(BODIES)],
        "FromCountry": "US",
        "To": SERVICE_NUMBER,
        "ToZip": "85004",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"+1602{3_000_000 + n % 5000:07d}",
        "ApiVersion": "2010-04-01",
    }


def wrk(url: str, args: argparse.Namespace, script: Path, prepared: Path, seconds: int) -> str:
    command = [
        "wrk",
        f"--threads={args.wrk_threads}",
        f"--connections={args.connections}",
        f"--duration={seconds}s",
        "--timeout=5s",
        f"--script={script}",
        url,
        "--",
        urlsplit_path(url),
        str(prepared),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    if "RESULT" not in done.stdout:
        raise SystemExit(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def urlsplit_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def server_master(url: str) -> int:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    for pid in all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in b" ".join(cmdline) and f"127.0.0.1:{port}".encode() in cmdline:
            return pid
    raise SystemExit(f"no gunicorn master found for port {port}")


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def child_pids(parent: int) -> list[int]:
    children = []
    for pid in all_pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(pid)
    return children


def database_cpu_seconds() -> float:
    """CPU used so far by the PostgreSQL backends connected to the benchmark's database
    (a backend's process title names its database)."""
    name = DATABASE_URL.rsplit("/", 1)[1].split("?", 1)[0].encode()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in all_pids():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b" ")
            if not title[0].startswith(b"postgres:") or name not in title:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def tree_cpu_seconds(master: int) -> float:
    """CPU used so far by a gunicorn master and its workers (user + system)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [master, *child_pids(master)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def box_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def forget_earlier_runs() -> None:
    from redis import Redis
    from sqlalchemy import create_engine, delete

    from linkpay.models import ProviderEvent

    engine = create_engine(DATABASE_URL)
    with engine.begin() as connection:
        connection.execute(
            delete(ProviderEvent).where(ProviderEvent.event_id.like(f"{SID_PREFIX}%"))
        )
    engine.dispose()
    Redis.from_url(REDIS_URL).flushdb()


def count_stored(run_token: str) -> int:
    """Inbound texts of the measured run the webhook took: each is a job waiting in Redis
    (no worker runs; the job is what stores the text in PostgreSQL)."""
    from redis import Redis

    redis = Redis.from_url(REDIS_URL)
    pattern = f"rq:job:inbound-{SID_PREFIX}{run_token}*"
    return sum(1 for _ in redis.scan_iter(match=pattern, count=10_000))


def report(args: argparse.Namespace, trivial: Run, webhook: Run, stored: int, load: tuple) -> None:
    print(
        f"gunicorn --workers {args.workers} --worker-class {args.worker_class} "
        f"--threads {args.threads}; wrk "
        f"{args.wrk_threads} threads, {args.connections} connections, {args.seconds} s each"
    )
    print(f"load average before, CPUs:  {', '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()}")
    for run in (trivial, webhook):
        print(
            f"{run.name:<24} {run.rate:>7,.0f} requests/s   p50 {run.p50_ms:5.1f} ms   "
            f"p99 {run.p99_ms:5.1f} ms   max {run.max_ms:6.1f} ms   "
            f"server CPU {run.cpu_ms_per_request:.2f} ms/request   PostgreSQL CPU "
            f"{run.database_ms_per_request:.2f} ms/request   machine busy "
            f"{run.box_busy:.0%}   errors {run.status_errors} status, {run.socket_errors} socket"
        )
    print(f"webhook / trivial:          {webhook.rate / trivial.rate:.2f}x (target >= 0.4x)")
    print(
        f"targets: >= 1,000 requests/s (got {webhook.rate:,.0f}), "
        f"p99 <= 50 ms (got {webhook.p99_ms:.1f} ms)"
    )
    answered = webhook.requests - webhook.status_errors
    # Requests still in flight when wrk stops are stored but not counted by wrk.
    print(f"inbound texts queued:       {stored} (webhook answered {answered} with 2xx)")
    if webhook.status_errors or stored < answered:
        raise SystemExit("some signed texts were refused or not queued")


if __name__ == "__main__":
    main()
