"""What opening a payment link may do: count the open, check the ZIP on file (locking the
link after too many wrong answers), and send a fresh link when it has expired.

Opening never pays, consumes or locks anything: SMS preview bots fetch links with GET and
HEAD. Only a submitted ZIP answer counts towards the lock, and only a submitted "send me a
new link" sends one, to the phone or email on file and nowhere else."""

from __future__ import annotations

import datetime as dt
import enum
import hmac

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session

from linkpay import postal_codes
from linkpay.models import Link, LinkStatus, advance
from linkpay.runtime import runtime
from linkpay.services import audit, links

MAX_ZIP_FAILURES = 5
FRESH_LINK_EVERY = dt.timedelta(minutes=10)


class ZipCheck(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"  # that was the last wrong answer the link allows
    UNVERIFIABLE = "unverifiable"  # no usable ZIP on file: nothing to compare with


def record_open(session: Session, link: Link) -> None:
    """Count a page view (GET only; HEAD is a bot's peek). One SQL update, no lost counts."""
    now = runtime().now()
    session.execute(
        update(Link)
        .where(Link.id == link.id)
        .values(
            open_count=Link.open_count + 1,
            first_opened_at=func.coalesce(Link.first_opened_at, now),
        )
        .execution_options(synchronize_session=False)
    )


def check_zip(
    session: Session, link: Link, answer: str, *, ip: str | None, user_agent: str | None
) -> ZipCheck:
    on_file = postal_codes.match_key(link.account.zip)
    if on_file is None:
        return ZipCheck.UNVERIFIABLE
    given = postal_codes.match_key(answer) or ""
    if hmac.compare_digest(given.encode(), on_file.encode()):
        return ZipCheck.OK
    failures = session.execute(
        update(Link)
        .where(Link.id == link.id)
        .values(zip_failures=Link.zip_failures + 1)
        .returning(Link.zip_failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    if failures < MAX_ZIP_FAILURES:
        return ZipCheck.WRONG
    session.refresh(link)
    if link.status == LinkStatus.ACTIVE:
        advance(link, LinkStatus.LOCKED)
        audit.record(
            session,
            "link.locked",
            actor="customer",
            account_id=link.account_id,
            subject=link,
            ip=ip,
            user_agent=user_agent,
            zip_failures=failures,
        )
    return ZipCheck.LOCKED


def send_fresh_link(session: Session, link: Link) -> bool:
    """Send a new link the way the old one went (its channel, to the address on file);
    False when one was already sent for this link in the last ten minutes."""
    now = runtime().now()
    # The conditional update claims the ten-minute slot: two taps at once send one link.
    claimed = session.execute(
        update(Link)
        .where(
            Link.id == link.id,
            or_(
                Link.fresh_link_sent_at.is_(None),
                Link.fresh_link_sent_at <= now - FRESH_LINK_EVERY,
            ),
        )
        .values(fresh_link_sent_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return False
    # The customer asked for it, there and then: quiet hours do not hold it back.
    links.send_link(session, link.account, channel=link.channel, kind="fresh_link", solicited=True)
    return True
