"""Pay by Text latency, run by hand: how long from a customer's ``PAY`` reaching the
webhook to the text carrying the one-time code reaching the Twilio API, with one idle
``linkpay worker`` process?

    createdb -h 127.0.0.1 -U postgres linkpay_bench
    python bench/pay_by_text_latency.py [--tries 200] [--phones 50]

PostgreSQL from LINKPAY_APP_DATABASE_URL (default the ``linkpay_bench`` database, migrated
here) and Redis from LINKPAY_APP_REDIS_URL (default db 12, flushed at the start and the
end: it is this benchmark's own). The database may be shared with other benchmarks: this
one only touches accounts numbered ``BPT-...``, what hangs off them (saved methods,
enrollments, text requests, messages, audit rows) and inbound events whose MessageSid
starts with ``SMbpt``; it deletes those at the start and the end and never drops anything.

Set-up: ``--phones`` accounts with a phone each are enrolled in Pay by Text through the
enrollment service (a sandbox card saved as the default, consent recorded, OK received),
the fake Twilio API (tests/fakes) is started as a real HTTP server, the web app runs under
``gunicorn --workers 2`` and one ``linkpay worker`` process waits for jobs, both configured
with ``sms.provider = twilio`` and ``twilio.api_base_url`` pointing at the fake. The
"reply OK" texts the enrollments queue are sent (and waited for) before timing starts.

Each try posts one signed ``PAY`` (a new MessageSid, the next phone in turn, so each phone
gets a new request that replaces its previous one) and waits until the fake API receives
the text to that phone carrying a 6-digit code; the time is from just before the POST to
the fake's receipt of that request. Tries run one after another, 0.2 s apart, so the worker
is idle when each PAY arrives. The configured quiet hours stay in force: the answer to a
customer's own text must not wait for them.

Target: p95 <= 1 s over 200 tries.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# Run as a script from anywhere: the repository root must come before an editable
# install's finder, which may predate packages added since (webhooks/, jobs/).
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.setdefault(
    "LINKPAY_APP_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/linkpay_bench"
)
REDIS_URL = os.environ.setdefault("LINKPAY_APP_REDIS_URL", "redis://127.0.0.1:6379/12")

from sqlalchemy import delete, insert, or_, select  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from linkpay import create_app  # noqa: E402
from linkpay.cli.db import upgrade  # noqa: E402
from linkpay.config import load_config  # noqa: E402
from linkpay.gateways import sandbox  # noqa: E402
from linkpay.models import (  # noqa: E402
    Account,
    AuditEvent,
    Link,
    Message,
    MethodKind,
    Payment,
    ProviderEvent,
    SandboxToken,
    SavedMethod,
    TextEnrollment,
    TextPaymentRequest,
    TextQuestion,
)
from linkpay.runtime import runtime  # noqa: E402
from linkpay.services import text_enrollment  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402

PREFIX = "BPT-"
SID_PREFIX = "SMbpt"
ACCOUNT_SID = "AC" + "b9b9" * 8
AUTH_TOKEN = "bench-twilio-auth-token"
SERVICE_NUMBER = "+16025550199"
BASE_URL = "https://pay.springfieldwtr.org"
WEBHOOK_PATH = "/webhooks/twilio/sms"
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
PAUSE_SECONDS = 0.2
TRY_TIMEOUT_SECONDS = 10.0


def main() -> None:
    args = parse_args()
    arrivals = Arrivals()
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    fake.on_request = arrivals.record
    env = service_environment(fake.url)
    os.environ.update(env)
    upgrade(DATABASE_URL)
    app = create_app(load_config())
    with app.app_context():
        runtime().queue.connection.flushdb()
        forget_earlier_runs()
        phones = enroll_phones(args.phones)
    with tempfile.TemporaryDirectory() as work, open(Path(work) / "service.log", "w") as log:
        web_port = free_port()
        web = start(gunicorn_command(web_port), env, work, log)
        worker = start(["linkpay", "worker"], env, work, log)
        try:
            wait_until_listening(web_port, web)
            arrivals.wait_for_count(len(phones), TRY_TIMEOUT_SECONDS * 3, "the reply-OK texts")
            load = os.getloadavg()
            seconds, misses = run_tries(args.tries, phones, web_port, arrivals)
        finally:
            for process in (worker, web):
                process.terminate()
                process.wait(timeout=30)
    with app.app_context():
        forget_earlier_runs()
        runtime().queue.connection.flushdb()
    fake.stop()
    report(args, seconds, misses, load)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=200)
    parser.add_argument("--phones", type=int, default=50, help="enrolled phones, used in turn")
    args = parser.parse_args()
    if not 0 < args.phones <= 9_999:
        parser.error("--phones must be between 1 and 9999")
    return args


def service_environment(fake_url: str) -> dict[str, str]:
    return {
        "LINKPAY_APP_DATABASE_URL": DATABASE_URL,
        "LINKPAY_APP_REDIS_URL": REDIS_URL,
        "LINKPAY_APP_SECRET_KEY": "bench-secret-key",
        "LINKPAY_APP_BASE_URL": BASE_URL,
        "LINKPAY_APP_PRODUCTION": "true",
        "LINKPAY_SMS_PROVIDER": "twilio",
        "LINKPAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "LINKPAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "LINKPAY_TWILIO_FROM_NUMBER": SERVICE_NUMBER,
        "LINKPAY_TWILIO_API_BASE_URL": fake_url,
        "LINKPAY_TWILIO_TIMEOUT_SECONDS": "10",
        "PYTHONPATH": str(ROOT),
    }


class Arrivals:
    """What reached the fake Twilio API, with the moment it arrived (perf_counter)."""

    def __init__(self) -> None:
        self.texts: list[tuple[float, str, str]] = []  # (arrived, To, Body)
        self.changed = threading.Condition()

    def record(self, recorded) -> None:
        form = recorded.body if isinstance(recorded.body, dict) else {}
        with self.changed:
            self.texts.append((time.perf_counter(), form.get("To", ""), form.get("Body", "")))
            self.changed.notify_all()

    def wait_for_count(self, count: int, timeout: float, what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.texts) >= count, timeout):
                raise SystemExit(f"{what} never all reached the fake Twilio API")

    def wait_for_code(self, phone: str, since: float, timeout: float) -> float | None:
        """When the first text to ``phone`` with a 6-digit code arrived after ``since``."""

        def found() -> float | None:
            for arrived, to, body in self.texts:
                if arrived >= since and to == phone and CODE.search(body):
                    return arrived
            return None

        with self.changed:
            self.changed.wait_for(lambda: found() is not None, timeout)
            return found()


def enroll_phones(count: int) -> list[str]:
    """Accounts with a balance and a phone, each enrolled with a saved sandbox card and
    activated, as if the customer had ticked the box and replied OK."""
    phones = [f"+1602{4_000_000 + n:07d}" for n in range(count)]
    with runtime().db.session() as session:
        session.execute(
            insert(Account),
            [
                {
                    "account_number": f"{PREFIX}{n:05d}",
                    "first_name": "Pat",
                    "last_name": "Bench",
                    "phone": phone,
                    "balance_cents": 12_450,
                    "zip": "85004",
                    "language": "en",
                }
                for n, phone in enumerate(phones)
            ],
        )
        # The gateway reads its vault in a session of its own: the tokens must be committed.
        tokens = [
            sandbox.vault(session, MethodKind.CARD, "Visa", "4242", sandbox.APPROVED)
            for _ in phones
        ]
    with runtime().db.session() as session:
        accounts = session.scalars(
            select(Account)
            .where(Account.account_number.like(f"{PREFIX}%"))
            .order_by(Account.account_number)
        ).all()
        for account, token in zip(accounts, tokens, strict=True):
            method = text_enrollment.save_method(session, account, token)
            text_enrollment.enroll(
                session, account, method, ip="127.0.0.1", user_agent="bench", language="en"
            )
        for phone in phones:
            text_enrollment.activate(session, phone)
    return phones


def run_tries(
    tries: int, phones: list[str], port: int, arrivals: Arrivals
) -> tuple[list[float], int]:
    validator = RequestValidator(AUTH_TOKEN)
    run = secrets.token_hex(4)
    seconds, misses = [], 0
    for n in range(tries):
        phone = phones[n % len(phones)]
        form = inbound_form(f"{SID_PREFIX}{run}{n:021d}", phone, "PAY")
        signature = validator.compute_signature(BASE_URL + WEBHOOK_PATH, form)
        started = time.perf_counter()
        post(port, form, signature)
        arrived = arrivals.wait_for_code(phone, started, TRY_TIMEOUT_SECONDS)
        if arrived is None:
            misses += 1
        else:
            seconds.append(arrived - started)
        time.sleep(PAUSE_SECONDS)
    return seconds, misses


def inbound_form(sid: str, phone: str, body: str) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "FromCountry": "US",
        "To": SERVICE_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "ApiVersion": "2010-04-01",
    }


def post(port: int, form: dict[str, str], signature: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
        data=urlencode(form).encode(),
        headers={"X-Twilio-Signature": signature},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise SystemExit(f"the webhook answered {response.status}")


def gunicorn_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "linkpay:create_app()",
    ]


def start(command: list[str], env: dict, cwd: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited at start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start listening within 30 s")


def forget_earlier_runs() -> None:
    with runtime().db.session() as session:
        ours = select(Account.id).where(Account.account_number.like(f"{PREFIX}%"))
        phones = select(Account.phone).where(Account.account_number.like(f"{PREFIX}%"))
        tokens = select(SavedMethod.token).where(SavedMethod.account_id.in_(ours))
        payments = select(Payment.id).where(Payment.account_id.in_(ours))
        session.execute(
            delete(Message).where(
                or_(
                    Message.account_id.in_(ours),
                    Message.to_address.in_(phones),
                    Message.payment_id.in_(payments),
                )
            )
        )
        session.execute(delete(Payment).where(Payment.account_id.in_(ours)))
        session.execute(delete(Link).where(Link.account_id.in_(ours)))
        session.execute(delete(TextQuestion).where(TextQuestion.phone.in_(phones)))
        session.execute(delete(TextPaymentRequest).where(TextPaymentRequest.account_id.in_(ours)))
        session.execute(delete(TextEnrollment).where(TextEnrollment.account_id.in_(ours)))
        session.execute(delete(SandboxToken).where(SandboxToken.token.in_(tokens)))
        session.execute(delete(SavedMethod).where(SavedMethod.account_id.in_(ours)))
        session.execute(delete(AuditEvent).where(AuditEvent.account_id.in_(ours)))
        session.execute(delete(ProviderEvent).where(ProviderEvent.event_id.like(f"{SID_PREFIX}%")))
        session.execute(delete(Account).where(Account.account_number.like(f"{PREFIX}%")))


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value at least ``share`` of the values are not above."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(args: argparse.Namespace, seconds: list[float], misses: int, load: tuple) -> None:
    print(f"tries:                     {args.tries} (PAY from {args.phones} enrolled phones)")
    print(f"load average before, CPUs: {', '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()}")
    if seconds:
        p50, p95 = percentile(seconds, 0.50), percentile(seconds, 0.95)
        print(
            f"PAY -> code text at Twilio: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {max(seconds) * 1000:.0f} ms (target p95 <= 1000 ms)"
        )
    print(f"no code text within {TRY_TIMEOUT_SECONDS:.0f} s:  {misses}")
    if misses:
        raise SystemExit("some PAY texts were never answered with a code")


if __name__ == "__main__":
    main()
