"""Payment links: create one, build its URL, and read a token back into a link's state.

The URL carries a signed token of the link's id; nothing usable is stored. Whether the link
still works (expired, used up, locked) is decided from its row, so staff can revoke one and
the lifetime can differ per link."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy.orm import Session

from linkpay.models import Account, Channel, Link, LinkStatus, Message
from linkpay.runtime import runtime
from linkpay.services import messages, text_enrollment
from linkpay.signing import Purpose


class LinkState(enum.StrEnum):
    OPEN = "open"
    EXPIRED = "expired"
    USED = "used"
    LOCKED = "locked"
    INVALID = "invalid"  # tampered, unknown or revoked: show nothing of the account


@dataclass(frozen=True)
class LinkLookup:
    state: LinkState
    link: Link | None = None

    @property
    def usable(self) -> bool:
        return self.state == LinkState.OPEN


def create_link(
    session: Session,
    account: Account,
    *,
    channel: str = "sms",
    campaign_id: int | None = None,
    ttl_hours: int | None = None,
) -> Link:
    now = runtime().now()
    hours = ttl_hours or runtime().config["links.ttl_hours"]
    link = Link(
        account_id=account.id,
        campaign_id=campaign_id,
        channel=channel,
        created_at=now,
        expires_at=now + dt.timedelta(hours=hours),
    )
    session.add(link)
    session.flush()
    return link


def link_url(link_id: int) -> str:
    token = runtime().signer.sign(Purpose.PAY_LINK, link_id)
    return f"{runtime().config['app.base_url']}/p/{token}"


def lookup(session: Session, token: str) -> LinkLookup:
    verified = runtime().signer.verify(Purpose.PAY_LINK, token, max_age_seconds=None)
    link = session.get(Link, verified.subject_id) if verified.subject_id else None
    if link is None or link.status == LinkStatus.REVOKED:
        return LinkLookup(LinkState.INVALID)
    if link.status == LinkStatus.USED:
        return LinkLookup(LinkState.USED, link)
    if link.status == LinkStatus.LOCKED:
        return LinkLookup(LinkState.LOCKED, link)
    if link.expires_at <= runtime().now():
        return LinkLookup(LinkState.EXPIRED, link)
    return LinkLookup(LinkState.OPEN, link)


def channels_for(choice: str) -> list[Channel]:
    if choice == "both":
        return [Channel.SMS, Channel.EMAIL]
    return [Channel(choice)]


def every_channel(account: Account) -> str:
    """Every channel the account has an address for: "both", "sms" or "email"."""
    if account.phone and account.email:
        return "both"
    return "sms" if account.phone else "email"


def send_link(
    session: Session,
    account: Account,
    *,
    channel: str = "sms",
    campaign_id: int | None = None,
    kind: str = "link",
    solicited: bool = False,
) -> tuple[Link, list[Message]]:
    """Create a link and queue it to the account by ``channel`` (sms, email or both)."""
    link = create_link(session, account, channel=channel, campaign_id=campaign_id)
    wanted = channels_for(channel)
    offer = text_enrollment.reply_pay_offer(session, account) if Channel.SMS in wanted else None
    context = link_context(account, link, reply_pay=offer)
    sent = [
        messages.queue_message(
            session,
            account,
            each,
            kind,
            context=context,
            solicited=solicited,
            link_id=link.id,
            campaign_id=campaign_id,
        )
        for each in wanted
    ]
    return link, sent


def link_context(account: Account, link: Link, reply_pay: dict | None = None) -> dict:
    """What a link message says. ``reply_pay`` (text_enrollment.reply_pay_offers) adds
    "Reply PAY to pay ..." to a text for a phone with Pay by Text on."""
    return {
        "url": link_url(link.id),
        "balance_cents": account.balance_cents,
        "due_date": account.due_date,
        "expires_at": link.expires_at,
        "reply_pay": reply_pay,
    }
