"""The periodic sweep: finds due work in the database and queues it.

Due work lives in rows (a held message's send_after, a plan's installment date), never only
in a timer, so a restart, a lost Redis or a scheduler that was down for days loses nothing:
the next sweep finds what is due. Each task claims rows with a conditional UPDATE, so two
sweeps running at once do each piece of work once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from linkpay.services import (
    inbound_texts,
    installments,
    messages,
    offers,
    payments,
    reminders,
    scheduled_payments,
)

log = logging.getLogger(__name__)

SweepTask = Callable[[Session], int]

TASKS: dict[str, SweepTask] = {
    "inbound_texts.answer_held": inbound_texts.answer_held,
    "messages.release_due": messages.release_due,
    "messages.requeue_stalled": messages.requeue_stalled,
    "payments.poll_unsettled": payments.poll_unsettled,
    # Reminders before expiry, so one due in the same sweep as the expiry is dropped by it.
    "reminders.send_due": reminders.send_due,
    "offers.expire_due": offers.expire_due,
    "installments.claim_due": installments.claim_due,
    "installments.requeue_stalled": installments.requeue_stalled,
    "scheduled_payments.claim_due": scheduled_payments.claim_due,
    "scheduled_payments.requeue_stalled": scheduled_payments.requeue_stalled,
}


class SweepFailed(RuntimeError):
    """Some sweep tasks raised; the others ran. The job fails so the failure is visible."""


def run(db) -> dict[str, int]:
    """Run every task in its own unit of work; one failing task does not stop the rest."""
    counts, failed = {}, []
    for name, task in TASKS.items():
        try:
            with db.session() as session:
                counts[name] = task(session)
        except Exception:
            log.exception("sweep task %s failed", name)
            failed.append(name)
    if failed:
        raise SweepFailed(f"sweep tasks failed: {', '.join(failed)}")
    return counts
