"""People and events start journeys: event and segment triggers, entry rules, GDPR."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError

from journeys import InvalidRequestError, RunStatus, UnknownRunError
from tests.helpers import Engine, eventually

WELCOME_ON_SIGNUP = """
journey: signup_welcome
trigger: { event: signed_up }
entry: {entry}
steps:
  - send: hello
    channel: email
    template: welcome
"""


async def test_an_event_starts_its_journey_with_the_event_data(engine: Engine) -> None:
    engine.write(
        "templates/plan_mail",
        'email: { subject: "Plan {{ event.data.plan }} via {{ event.name }}", text: x }',
    )
    engine.write(
        "signup_welcome",
        WELCOME_ON_SIGNUP.replace("{entry}", "once").replace(
            "template: welcome", "template: plan_mail"
        ),
    )
    await engine.client.identify("e1", {"email": "e1@example.com"})
    result = await engine.client.track("e1", "signed_up", {"plan": "gold"})
    assert result.recorded and len(result.started) == 1
    status = await engine.until_done(result.started[0].run_id)
    assert status.journey == "signup_welcome" and status.state == "completed"
    assert [m["Subject"] for m in engine.mail.messages] == ["Plan gold via signed_up"]
    again = await engine.client.track("e1", "signed_up", {"plan": "gold"})
    assert again.started == []  # entry: once
    other = await engine.client.track("e1", "viewed_pricing")
    assert other.started == []


async def test_entry_rules(engine: Engine) -> None:
    engine.write(
        "every",
        WELCOME_ON_SIGNUP.replace("{entry}", "every_time")
        .replace("signup_welcome", "every")
        .replace("signed_up", "ping"),
    )
    engine.write(
        "weekly",
        WELCOME_ON_SIGNUP.replace("{entry}", "{at_most_once_per: 7d}")
        .replace("signup_welcome", "weekly")
        .replace("signed_up", "ping"),
    )
    first = await engine.client.track("r1", "ping")
    assert sorted(h.journey for h in first.started) == ["every", "weekly"]
    for handle in first.started:
        await engine.until_done(handle.run_id)
    second = await engine.client.track("r1", "ping")
    assert [h.journey for h in second.started] == ["every"]  # weekly: not again this week
    await engine.until_done(second.started[0].run_id)


async def test_event_ids_make_tracking_safe_to_retry(engine: Engine) -> None:
    engine.write(
        "every",
        WELCOME_ON_SIGNUP.replace("{entry}", "every_time")
        .replace("signup_welcome", "every")
        .replace("signed_up", "ping"),
    )
    one = await engine.client.track("d1", "ping", event_id="evt-123")
    two = await engine.client.track("d1", "ping", event_id="evt-123")
    assert one.recorded and len(one.started) == 1
    assert not two.recorded and two.started == []
    assert await engine.client.store.events.count("d1", "ping") == 1


async def test_entering_a_segment_starts_its_journey(engine: Engine) -> None:
    engine.write(
        "segments",
        """
segments:
  pro_users: { attribute: plan, op: eq, value: pro }
  vip: { manual: true }
  big_buyers: { event: purchase, count: { gte: 2 } }
""",
    )
    for name, segment in (
        ("pro_onboarding", "pro_users"),
        ("vip_hello", "vip"),
        ("buyer_thanks", "big_buyers"),
    ):
        engine.write(
            name,
            f"journey: {name}\ntrigger: {{ segment: {segment} }}\nsteps:\n"
            "  - send: hello\n    channel: email\n    template: welcome\n",
        )
    assert await engine.client.identify("s1", {"plan": "free", "email": "s1@example.com"}) == []
    upgraded = await engine.client.identify("s1", {"plan": "pro"})
    assert [h.journey for h in upgraded] == ["pro_onboarding"]
    assert await engine.client.identify("s1", {"plan": "pro", "seats": 3}) == []  # still in
    await engine.client.identify("s1", {"plan": "free"})  # leaves...
    back = await engine.client.identify("s1", {"plan": "pro"})  # ...and enters again:
    assert back == []  # but entry is once
    vip = await engine.client.add_to_segment("vip", ["s1", "s2"])
    assert sorted(h.recipient_id for h in vip) == ["s1", "s2"]
    assert (await engine.client.track("s1", "purchase")).started == []
    bought = await engine.client.track("s1", "purchase")
    assert [h.journey for h in bought.started] == ["buyer_thanks"]
    assert sorted(await engine.client.memberships("s1")) == ["big_buyers", "pro_users", "vip"]
    members = await engine.client.segment_members("vip")
    assert members.ids == ["s1", "s2"] and members.next is None
    assert await engine.client.segment_size("pro_users") == 1
    with pytest.raises(InvalidRequestError, match="not manual"):
        await engine.client.add_to_segment("pro_users", ["s3"])
    with pytest.raises(UnknownRunError, match="unknown segment 'nope'"):
        await engine.client.segment_members("nope")


async def test_segments_defined_through_the_api(engine: Engine) -> None:
    await engine.client.define_segment("frenchies", {"attribute": "country", "value": "fr"})
    await engine.client.define_segment("hand_picked", manual=True)
    await engine.client.identify("a1", {"country": "fr"})
    await engine.client.identify("a2", {"country": "de"})
    await engine.client.add_to_segment("hand_picked", ["a2"])
    assert (await engine.client.segment_members("frenchies")).ids == ["a1"]
    assert sorted(await engine.client.memberships("a2")) == ["hand_picked"]
    with pytest.raises(InvalidRequestError, match="did you mean 'attribute'"):
        await engine.client.define_segment("broken", {"atribute": "x"})


async def test_anonymous_history_joins_the_person_on_identify(engine: Engine) -> None:
    await engine.client.track_anonymous("anon-7", "viewed_pricing", {"page": "/pricing"})
    await engine.client.track_anonymous("anon-7", "viewed_pricing", {"page": "/pricing/team"})
    assert await engine.client.store.events.count("v1", "viewed_pricing") == 0
    await engine.client.identify("v1", {"email": "v1@example.com"}, anonymous_id="anon-7")
    assert await engine.client.store.events.count("v1", "viewed_pricing") == 2


async def test_merge_two_people(engine: Engine) -> None:
    await engine.client.identify("m-primary", {"email": "p@example.com", "plan": "pro"})
    await engine.client.identify("m-secondary", {"plan": "free", "city": "Lyon"})
    await engine.client.track("m-secondary", "login")
    await engine.client.add_device("m-secondary", "tok-1", "ios")
    await engine.client.merge_people("m-primary", "m-secondary")
    person = await engine.client.person("m-primary")
    assert person.attributes == {"email": "p@example.com", "plan": "pro", "city": "Lyon"}
    assert [d["token"] for d in person.devices] == ["tok-1"]
    assert await engine.client.store.events.count("m-primary", "login") == 1
    with pytest.raises(UnknownRunError):
        await engine.client.person("m-secondary")


async def test_people_listing_and_filters(engine: Engine) -> None:
    for i in range(5):
        await engine.client.identify(f"l{i}", {"email": f"L{i}@Example.com", "team": i % 2})
    page = await engine.client.people(limit=2)
    assert page.ids == ["l0", "l1"] and page.next == "l1"
    rest = await engine.client.people(after=page.next, limit=10)
    assert rest.ids == ["l2", "l3", "l4"] and rest.next is None
    assert (await engine.client.people(email="l3@example.COM")).ids == ["l3"]
    assert (await engine.client.people(attribute=("team", 1))).ids == ["l1", "l3"]


async def test_gdpr_delete_mid_journey_and_export(engine: Engine) -> None:
    handle = await engine.client.trigger(
        "onboarding", [{"id": "g1", "email": "g1@example.com", "first_name": "Gus"}]
    )
    await engine.until_at(handle.run_id, "wait_1d")
    await engine.client.track("g1", "app_opened")
    await engine.client.add_device("g1", "device-g1", "android")
    await engine.client.update_preferences("g1", topics={"news": False})
    exported = await engine.client.export_person("g1")
    assert exported["person"]["attributes"]["first_name"] == "Gus"
    assert [e["name"] for e in exported["events"]] == ["app_opened"]
    assert [m["state"] for m in exported["messages"]] == ["sent"]
    assert exported["devices"][0]["token"] == "device-g1"
    assert exported["preferences"]["topics"] == {"news": False}
    assert exported["runs"][0]["journey"] == "onboarding"
    feed = await engine.client.activity("g1")
    assert {e.type for e in feed} == {"event", "journey_entered", "message"}
    assert [e.type for e in await engine.client.activity("g1", types=["message"])] == ["message"]

    assert await engine.client.delete_person("g1") is True
    with pytest.raises(UnknownRunError):
        await engine.client.person("g1")
    assert await engine.client.store.events.count("g1", "app_opened") == 0
    assert await engine.client.store.messages.find(recipient_id="g1") == []
    assert (await engine.client.store.consent.preferences("g1")).topics == {}

    async def gone() -> bool:  # the run was cancelled, then deleted from Temporal
        try:
            await engine.temporal.get_workflow_handle(
                handle.runs[0].workflow_id, run_id=handle.run_id
            ).describe()
        except RPCError:
            return True
        return False

    # The dev server carries out deletions some 30 s after it accepts them.
    await eventually(gone, bool, timeout=120, what="the run deleted from Temporal")
    assert len(engine.mail.messages) == 1


async def test_batch_applies_in_order_with_a_result_each(engine: Engine) -> None:
    results = await engine.client.batch(
        [
            {"type": "identify", "id": "b1", "attributes": {"plan": "pro"}},
            {"type": "track", "id": "b1", "event": "login"},
            {"type": "track", "event": "login"},
            {"type": "fly", "id": "b1"},
            {"type": "delete", "id": "b1"},
        ]
    )
    assert [r.ok for r in results] == [True, True, False, False, True]
    assert results[2].error == "id"
    assert "expected identify, track" in (results[3].error or "")
    with pytest.raises(UnknownRunError):
        await engine.client.person("b1")


async def test_a_run_started_by_an_event_is_readable(engine: Engine) -> None:
    engine.write("signup_welcome", WELCOME_ON_SIGNUP.replace("{entry}", "once"))
    started = (await engine.client.track("x9", "signed_up")).started
    status = await engine.until_done(started[0].run_id)
    assert isinstance(status, RunStatus) and status.trigger_id.startswith("trg_")
    assert status.timeline[0].outcome == "skipped"  # no email address: nothing to send to
