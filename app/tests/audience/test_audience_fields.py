"""Reading an audience event's fields: fired_at and its zone, email/campaign per type, dedupe."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.audience.events import (
    UnknownTimeZone,
    audience_new_event,
    fired_at_zone,
    parse_fired_at,
    read_fields,
)
from app.processing.models import EventKind

UTC_ZONE = ZoneInfo("UTC")


def test_fired_at_is_read_in_the_configured_zone_and_converted_to_utc() -> None:
    assert parse_fired_at("2009-03-26 21:35:57", UTC_ZONE) == datetime(
        2009, 3, 26, 21, 35, 57, tzinfo=UTC
    )
    new_york = ZoneInfo("America/New_York")
    # 26 March 2009 is after the US switch to daylight time: UTC-4.
    assert parse_fired_at("2009-03-26 21:35:57", new_york) == datetime(
        2009, 3, 27, 1, 35, 57, tzinfo=UTC
    )
    # January: UTC-5.
    assert parse_fired_at("2009-01-26 21:35:57", new_york) == datetime(
        2009, 1, 27, 2, 35, 57, tzinfo=UTC
    )


def test_a_repeated_wall_clock_hour_reads_as_its_first_occurrence() -> None:
    new_york = ZoneInfo("America/New_York")
    # 1 November 2009, 01:30 happened twice in New York; the first was still EDT (UTC-4).
    assert parse_fired_at("2009-11-01 01:30:00", new_york) == datetime(
        2009, 11, 1, 5, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "yesterday",
        "2009-03-26",
        "2009-03-26T21:35:57",
        "2009-02-30 10:00:00",
        "2009-03-26 25:00:00",
        "0001-01-01 00:00:00",
        {"nested": "value"},
        ["2009-03-26 21:35:57"],
    ],
)
def test_unparseable_fired_at_is_none_never_an_error(raw: object) -> None:
    zone = ZoneInfo("Asia/Tokyo")  # UTC+9 pushes year 1 below datetime.min
    assert parse_fired_at(raw, zone) is None


def test_surrounding_whitespace_is_tolerated() -> None:
    assert parse_fired_at(" 2009-03-26 21:35:57\n", UTC_ZONE) is not None


def test_unknown_zone_name_is_a_clear_configuration_error() -> None:
    with pytest.raises(UnknownTimeZone, match="MAILCHIMP_FIRED_AT_TIMEZONE"):
        fired_at_zone("Mars/Olympus_Mons")
    with pytest.raises(UnknownTimeZone):
        fired_at_zone("../../etc/passwd")


def test_fields_per_type() -> None:
    sub = read_fields(
        {"type": "subscribe", "fired_at": "x", "data": {"email": "a@b.c", "list_id": "L"}}
    )
    assert sub is not None
    assert (sub.email, sub.list_id, sub.campaign_id) == ("a@b.c", "L", None)

    unsub = read_fields(
        {"type": "unsubscribe", "data": {"email": "a@b.c", "list_id": "L", "campaign_id": "C"}}
    )
    assert unsub is not None
    assert (unsub.email, unsub.campaign_id, unsub.subject) == ("a@b.c", "C", "a@b.c")

    upemail = read_fields(
        {
            "type": "upemail",
            "data": {"list_id": "L", "new_email": "new@b.c", "old_email": "old@b.c"},
        }
    )
    assert upemail is not None
    assert upemail.email == "new@b.c"
    assert upemail.data["old_email"] == "old@b.c"

    campaign = read_fields(
        {"type": "campaign", "data": {"id": "5aa2102003", "list_id": "L", "status": "sent"}}
    )
    assert campaign is not None
    assert (campaign.email, campaign.campaign_id, campaign.list_id) == (None, "5aa2102003", "L")
    assert campaign.subject == "5aa2102003"


def test_a_form_without_a_usable_type_has_no_fields() -> None:
    assert read_fields({}) is None
    assert read_fields({"type": ""}) is None
    assert read_fields({"type": {"x": "y"}}) is None


def test_dedupe_key_covers_the_whole_event() -> None:
    form = {
        "type": "subscribe",
        "fired_at": "2009-03-26 21:35:57",
        "data": {"email": "a@b.c", "list_id": "L", "merges": {"FNAME": "A"}},
    }
    fields = read_fields(form)
    assert fields is not None
    event = audience_new_event(form, fields)
    assert event.kind == EventKind.AUDIENCE
    assert event.event_type == "subscribe"
    assert event.message_key == "a@b.c"
    assert len(event.dedupe_key) == 64

    def key(**changes: object) -> str:
        changed = {**form, **changes}
        f = read_fields(changed)
        assert f is not None
        return audience_new_event(changed, f).dedupe_key

    assert key() == event.dedupe_key
    # Two profile updates of one member in one second with different data are two events.
    assert key(data={**form["data"], "merges": {"FNAME": "B"}}) != event.dedupe_key  # type: ignore[dict-item]
    # The same event with its fields in another order is the same event.
    reordered = {"data": {"merges": {"FNAME": "A"}, "list_id": "L", "email": "a@b.c"}}
    assert key(**reordered) == event.dedupe_key
    assert key(type="profile") != event.dedupe_key
    assert key(fired_at="2009-03-26 21:35:58") != event.dedupe_key
    assert key(data={"email": "a@b.c", "list_id": "M"}) != event.dedupe_key
    assert key(data={"email": "z@b.c", "list_id": "L"}) != event.dedupe_key


def test_event_type_is_bounded() -> None:
    form = {"type": "x" * 500}
    fields = read_fields(form)
    assert fields is not None
    assert len(audience_new_event(form, fields).event_type) == 64
