"""campaigns.send_campaign: links and messages in bulk, every skip counted with its reason."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from linkpay.models import Account, Campaign, Channel, Contact, Link, Message, MessageStatus
from linkpay.queue import BULK, DEFAULT
from linkpay.runtime import runtime
from linkpay.services import campaign_chunk, campaigns, links

PHONES = ["+16025550143", "+16025551234", "+16022345678", "+14805550199", "+15205550143"]
NIGHT_IN_PHOENIX = dt.datetime(2026, 3, 11, 5, 0, tzinfo=dt.UTC)  # 22:00


def make_accounts(db, count: int, **fields) -> list[Account]:
    accounts = []
    for n in range(count):
        values = {
            "account_number": f"A-{n + 1}",
            "first_name": "Ana",
            "phone": PHONES[n % len(PHONES)],
            "email": f"ana{n + 1}@example.com",
            "balance_cents": 1000 + n,
            "zip": "85004",
        }
        accounts.append(Account(**{**values, **fields}))
    db.add_all(accounts)
    db.commit()
    return accounts


def everyone():
    return select(Account)


def bulk_job_ids() -> set[str]:
    return set(runtime().queue.queues[BULK].job_ids)


def messages_on_the_bulk_queue() -> list[int]:
    """The message ids the bulk queue's send jobs carry (batches of them)."""
    return sorted(i for job in runtime().queue.queues[BULK].jobs for i in job.args[0])


def linked_id(db, body: str) -> int:
    """The id of the link whose URL is in ``body`` (tokens carry their signing second, so
    the URL is read back rather than built again)."""
    token = re.search(r"https://pay\.example\.org/p/(\S+)", body).group(1)
    return links.lookup(db, token).link.id


def rows(db, model):
    return db.scalars(select(model).order_by(model.id)).all()


def test_every_account_gets_its_own_link_by_text_on_the_bulk_queue(db):
    make_accounts(db, 3)
    result = campaigns.send_campaign(db, "March", "sms", everyone(), "staff:test")
    assert (result.accounts, result.links, result.queued, result.deferred) == (3, 3, 3, 0)
    assert result.suppressed_total == 0
    sent = rows(db, Message)
    assert {m.status for m in sent} == {MessageStatus.QUEUED}
    assert {m.campaign_id for m in sent} == {result.campaign_id}
    for message in sent:
        link = db.get(Link, message.link_id)
        assert (link.account_id, link.campaign_id) == (message.account_id, result.campaign_id)
        assert linked_id(db, message.body) == link.id
        assert message.segments == 1
    assert messages_on_the_bulk_queue() == [m.id for m in sent]
    assert bulk_job_ids() == {m.job_id for m in sent}  # the sweep can tell the job is alive
    assert runtime().queue.queues[DEFAULT].count == 0  # never ahead of customers' replies


def test_the_counts_are_kept_on_the_campaign(db):
    make_accounts(db, 2)
    result = campaigns.send_campaign(db, "March", "sms", everyone(), "staff:ana")
    campaign = db.get(Campaign, result.campaign_id)
    assert campaign.name == "March"
    assert campaign.created_by == "staff:ana"
    assert campaign.counts == result.as_counts()
    assert campaign.counts["queued"] == 2


def test_each_suppression_is_counted_with_its_reason(db, clock):
    accounts = make_accounts(db, 5)
    accounts[0].balance_cents = 0
    accounts[1].balance_cents = -500
    accounts[2].phone = None
    db.add(Contact(channel=Channel.SMS, address=accounts[3].phone, opted_out_at=clock()))
    db.add(Contact(channel=Channel.SMS, address=accounts[4].phone, undeliverable_at=clock()))
    db.commit()
    result = campaigns.send_campaign(db, "March", "sms", everyone(), "staff:test")
    assert result.queued == 0
    assert result.suppressed == {"no_balance": 2, "no_phone": 1, "opted_out": 1, "undeliverable": 1}
    assert result.links == 0  # nobody could be reached, so no link was made
    suppressed = rows(db, Message)
    assert [m.skip_reason for m in suppressed] == ["no_phone", "opted_out", "undeliverable"]
    assert all(m.link_id is None and m.body == "" for m in suppressed)
    assert bulk_job_ids() == set()


def test_an_accounts_file_with_duplicates_and_unknown_numbers(db):
    make_accounts(db, 2)
    numbers = ["A-1", "A-2", " A-1 ", "", "NOPE-1", "NOPE-2", "A-2"]
    result = campaigns.send_campaign(db, "File", "sms", numbers, "staff:test")
    assert result.queued == 2
    assert result.suppressed == {"duplicate": 2, "unknown_account": 2}
    assert result.unknown == ["NOPE-1", "NOPE-2"]
    assert len(rows(db, Link)) == 2


def test_unknown_numbers_keep_a_sample_of_twenty(db):
    numbers = [f"GONE-{n}" for n in range(25)]
    result = campaigns.send_campaign(db, "File", "sms", numbers, "staff:test", chunk_size=7)
    assert result.suppressed["unknown_account"] == 25
    assert result.unknown == numbers[:20]


def test_by_both_an_account_with_only_an_email_still_gets_the_email(db):
    make_accounts(db, 1, phone=None)
    result = campaigns.send_campaign(db, "Both", "both", everyone(), "staff:test")
    assert (result.links, result.queued) == (1, 1)
    assert result.suppressed == {"no_phone": 1}
    by_channel = {m.channel: m for m in rows(db, Message)}
    assert by_channel[Channel.EMAIL].status == MessageStatus.QUEUED
    assert by_channel[Channel.EMAIL].subject.startswith("Springfield Water")
    assert by_channel[Channel.EMAIL].link_id == by_channel[Channel.SMS].link_id
    assert by_channel[Channel.SMS].skip_reason == "no_phone"


def test_in_quiet_hours_the_texts_are_deferred_not_queued(db, clock):
    make_accounts(db, 2)
    clock.set(NIGHT_IN_PHOENIX)
    result = campaigns.send_campaign(db, "Night", "sms", everyone(), "staff:test")
    assert (result.queued, result.deferred, result.links) == (0, 2, 2)
    held = rows(db, Message)
    assert {m.status for m in held} == {MessageStatus.SCHEDULED}
    assert {m.send_after for m in held} == {dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC)}
    assert all(m.body for m in held)  # rendered now, sent by the sweep in the morning
    assert bulk_job_ids() == set()


def test_an_account_sent_a_campaign_link_in_the_last_day_is_not_sent_another(db, clock):
    make_accounts(db, 2)
    campaigns.send_campaign(db, "First", "sms", everyone(), "staff:test")
    again = campaigns.send_campaign(db, "Second", "sms", everyone(), "staff:test")
    assert (again.queued, again.links) == (0, 0)
    assert again.suppressed == {"recently_sent": 2}
    clock.advance(hours=25)
    later = campaigns.send_campaign(db, "Third", "sms", everyone(), "staff:test")
    assert later.queued == 2


def test_a_single_link_does_not_count_as_a_campaign_send(db):
    (account,) = make_accounts(db, 1)
    links.send_link(db, account)
    db.commit()
    result = campaigns.send_campaign(db, "March", "sms", everyone(), "staff:test")
    assert result.queued == 1


@pytest.mark.parametrize("targets", [everyone(), [f"A-{n}" for n in range(1, 8)]])
def test_small_chunks_send_each_account_exactly_once(db, targets):
    make_accounts(db, 7)
    result = campaigns.send_campaign(db, "Chunks", "sms", targets, "staff:test", chunk_size=3)
    assert (result.accounts, result.queued) == (7, 7)
    assert sorted(link.account_id for link in rows(db, Link)) == list(range(1, 8))
    assert len(messages_on_the_bulk_queue()) == 7
    assert len(db.identity_map) == 0  # each chunk's rows were let go


def test_each_message_is_in_the_accounts_language(db):
    make_accounts(db, 1, language="es", first_name="Sofía")
    campaigns.send_campaign(db, "ES", "sms", everyone(), "staff:test")
    (message,) = rows(db, Message)
    assert message.language == "es"
    assert message.body.startswith("Springfield Water: Hola Sofia,")
    assert message.body.endswith("Responda PARAR para cancelar")


def test_a_crash_mid_campaign_keeps_earlier_chunks_and_a_rerun_finishes_it(db, monkeypatch):
    make_accounts(db, 6)
    real_render = campaign_chunk._render_batch

    def render_failing_on_the_fifth(channel, lang, contexts):
        if any(c["account"].account_number == "A-5" for c in contexts):
            raise RuntimeError("renderer crashed")
        return real_render(channel, lang, contexts)

    monkeypatch.setattr(campaign_chunk, "_render_batch", render_failing_on_the_fifth)
    with pytest.raises(RuntimeError):
        campaigns.send_campaign(db, "Crash", "sms", everyone(), "staff:test", chunk_size=2)
    db.rollback()
    assert len(rows(db, Message)) == 4  # the first two chunks, committed and queued
    assert len(messages_on_the_bulk_queue()) == 4
    monkeypatch.setattr(campaign_chunk, "_render_batch", real_render)
    rerun = campaigns.send_campaign(db, "Crash again", "sms", everyone(), "staff:test")
    assert rerun.queued == 2
    assert rerun.suppressed == {"recently_sent": 4}
