"""Many texts at once, through a real threaded web server: 50 confirmations of one request
charge once and send one receipt; one message delivered twice at the same moment is
stored and handled once; two STOPs at once confirm once. Runs on SQLite and, in CI, on
PostgreSQL (the suite's PG run)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from jobs.inbound import handle_inbound_sms
from linkpay.models import Payment, ProviderEvent
from linkpay.queue import HIGH
from linkpay.runtime import runtime
from tests.fakes.fixtures import twilio_signature
from tests.webhooks.inbound_flow import (
    PHONE,
    WEBHOOK_PATH,
    WEBHOOK_URL,
    Phone,
    code_in,
    enroll,
    inbound,
    make_account,
)

CONCURRENT = 50


@pytest.fixture(autouse=True)
def twilio(fake_twilio):
    return fake_twilio


@pytest.fixture
def server(app) -> Iterator[str]:
    """The test app behind werkzeug's threaded server, on a free local port."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


def post_all(server: str, forms: list[dict]) -> list[int]:
    """POST every form at (as nearly as threads allow) the same moment."""
    barrier = threading.Barrier(len(forms))

    def post(form: dict) -> int:
        signature = twilio_signature(WEBHOOK_URL, form)
        with requests.Session() as http:
            barrier.wait()
            response = http.post(
                server + WEBHOOK_PATH,
                data=form,
                headers={"X-Twilio-Signature": signature},
                timeout=60,
            )
        return response.status_code

    with ThreadPoolExecutor(len(forms)) as pool:
        return list(pool.map(post, forms))


def run_inbound_jobs_concurrently(app, threads: int = 8) -> list[str]:
    """Take the queued inbound jobs off the high queue and run them from several threads,
    as several workers would."""
    queue = runtime().queue.queues[HIGH]
    jobs = [job for job in queue.jobs if job.func_name == "jobs.inbound.handle_inbound_sms"]
    for job in jobs:
        assert job.id == f"inbound-{job.args[0]['MessageSid']}"
        queue.remove(job)
    barrier = threading.Barrier(threads)

    def run(chunk: list) -> list[str]:
        with app.app_context():
            barrier.wait()
            return [handle_inbound_sms(*job.args) for job in chunk]

    chunks = [jobs[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [outcome for chunk in pool.map(run, chunks) for outcome in chunk]


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_fifty_concurrent_confirmations_charge_once_and_send_one_receipt(
    app, db, client, fake_twilio, run_jobs, server
):
    account = make_account(db)
    enroll(db, account)
    phone = Phone(client, fake_twilio, run_jobs)
    code = code_in(phone.ask("PAY 25"))
    sent_before = len(fake_twilio.sent)

    statuses = post_all(server, [inbound(code) for _ in range(CONCURRENT)])

    assert statuses == [200] * CONCURRENT
    outcomes = run_inbound_jobs_concurrently(app)
    assert len(outcomes) == CONCURRENT
    assert count(db, ProviderEvent) == CONCURRENT + 1  # the PAY and 50 distinct MessageSids
    run_jobs()  # the send jobs the confirmation queued

    (payment,) = db.scalars(select(Payment)).all()
    assert payment.amount_cents == 2_500
    new = [form for form in fake_twilio.sent[sent_before:] if form["To"] == PHONE]
    receipts = [form["Body"] for form in new if payment.confirmation_number in form["Body"]]
    assert len(receipts) == 1
    assert len(new) == 1  # the others paid nothing and said nothing
    db.refresh(account)
    assert account.balance_cents == 12_450 - 2_500


def test_one_message_delivered_twice_at_the_same_moment_is_handled_once(
    app, db, client, fake_twilio, run_jobs, server
):
    make_account(db)
    form = inbound("BAL")
    assert post_all(server, [dict(form) for _ in range(8)]) == [200] * 8
    # However many copies reach the queue, workers answering them at the same moment
    # store the text once (the unique MessageSid) and answer it once.
    barrier = threading.Barrier(8)

    def answer() -> str:
        with app.app_context():
            barrier.wait()
            return handle_inbound_sms(dict(form))

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: answer(), range(8)))
    assert sorted(o.split(":")[0] for o in outcomes) == ["balance"] + ["duplicate"] * 7
    run_jobs()
    assert count(db, ProviderEvent) == 1
    assert len([f for f in fake_twilio.sent if f["To"] == PHONE]) == 1


def test_two_stops_at_once_confirm_once(app, db, fake_twilio, run_jobs, server):
    make_account(db)
    assert post_all(server, [inbound("STOP"), inbound("PARAR")]) == [200, 200]
    run_jobs()
    assert len([f for f in fake_twilio.sent if f["To"] == PHONE]) == 1
