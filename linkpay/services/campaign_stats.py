"""What became of a campaign: its messages' statuses now, the links opened, the payments.

Read from the rows as they are at the moment of asking (status callbacks and payments keep
moving them), with one grouped query per figure, so it stays quick for 100,000 messages."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linkpay.models import Campaign, Link, Message, Payment, PaymentStatus


@dataclass
class CampaignStats:
    campaign: Campaign
    messages: dict[str, Counter] = field(default_factory=dict)  # channel -> status -> n
    links: int = 0
    opened: int = 0  # links opened at least once (Link.first_opened_at)
    paid: int = 0
    paid_cents: int = 0
    pending: int = 0  # accepted, not settled yet (ACH)
    pending_cents: int = 0

    @property
    def opened_percent(self) -> float:
        return 100.0 * self.opened / self.links if self.links else 0.0


def campaign_stats(session: Session, campaign_id: int) -> CampaignStats | None:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    stats = CampaignStats(campaign)
    by_status = session.execute(
        select(Message.channel, Message.status, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.channel, Message.status)
    )
    for channel, status, count in by_status:
        stats.messages.setdefault(str(channel), Counter())[str(status)] = count
    stats.links, stats.opened = session.execute(
        select(func.count(), func.count(Link.first_opened_at)).where(
            Link.campaign_id == campaign_id
        )
    ).one()
    payments = session.execute(
        select(Payment.status, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .join(Link, Payment.link_id == Link.id)
        .where(Link.campaign_id == campaign_id)
        .group_by(Payment.status)
    )
    for status, count, cents in payments:
        if status == PaymentStatus.PAID:
            stats.paid, stats.paid_cents = count, int(cents)
        elif status == PaymentStatus.PENDING:
            stats.pending, stats.pending_cents = count, int(cents)
    return stats
