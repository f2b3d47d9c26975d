"""A channel is one module and one registration line: the test-only pigeon channel.

``tests/channels/pigeon.py`` is the whole channel; registering it (the fixture's one line)
is all it takes for the configuration, the compiler, the batch sizes and the worker's task
queues to know it. Nothing else in the code base names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from definitions.channels import CHANNELS, ChannelSpec
from definitions.compiler import Library
from definitions.errors import ConfigurationError, DefinitionError
from definitions.runtime import channel_queue
from journeys.client import JourneysClient
from journeys.config import Settings, load_settings
from journeys.dev.catchers import caught_channels
from journeys.devserver import DevServer
from tests.channels import pigeon
from tests.helpers import eventually
from workers.worker import running_worker

JOURNEY = """\
journey: post
steps:
  - send: note
    channel: pigeon
    template: note
"""

TEMPLATE = """\
pigeon:
  note: "Hi {{ customer.first_name }}"
  ring: { colour: "{{ customer.colour | default: 'red' }}", band: 7 }
"""


@pytest.fixture
def registered() -> Iterator[ChannelSpec]:
    CHANNELS.register(pigeon.CHANNEL)  # the one registration line
    yield pigeon.CHANNEL
    CHANNELS.unregister(pigeon.CHANNEL.name)


@pytest.fixture
def sky() -> Iterator[pigeon.Sky]:
    pigeon.SKY.carried.clear()
    pigeon.SKY.storms.clear()
    yield pigeon.SKY
    pigeon.SKY.carried.clear()
    pigeon.SKY.storms.clear()


def directory(root: Path, journey: str = JOURNEY, template: str = TEMPLATE) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "post.yaml").write_text(journey)
    (root / "templates" / "note.yaml").write_text(template)
    return root


def test_unregistered_it_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text("[pigeon]\ncoop = 'west'\n")
    with pytest.raises(ConfigurationError, match="pigeon: Extra inputs are not permitted"):
        load_settings(path, environ={})
    with pytest.raises(DefinitionError, match=r"expected a channel .*, found 'pigeon'"):
        Library(directory(tmp_path / "journeys")).compile("post")


@pytest.mark.usefixtures("registered")
def test_its_section_secret_batch_size_and_windows(tmp_path: Path) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text(
        "[pigeon]\ncoop = 'west'\nbatch_size = 7\nrate_limit = 5.0\nretry_window = '2h'\n"
    )
    settings = load_settings(path, environ={"JOURNEYS_PIGEON_KEY": "s3cret"})
    assert settings.pigeon.coop == "west" and settings.pigeon.key == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.batch_sizes()["pigeon"] == 7
    assert settings.rate_limits() == {"pigeon": 5.0}
    assert settings.retry_windows() == {"pigeon": 7200.0}
    assert Settings().retry_windows(defaults=True)["pigeon"] == 600.0
    assert caught_channels(settings)["pigeon"] == "no local catcher for it"
    path.write_text("[pigeon]\nkey = 'x'\n")
    with pytest.raises(ConfigurationError, match="set JOURNEYS_PIGEON_KEY instead"):
        load_settings(path, environ={})
    path.write_text("[pigeon]\nwings = 2\nbatch_size = 0\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, environ={})
    assert "pigeon.wings: Extra inputs are not permitted" in str(caught.value)
    assert "pigeon.batch_size: Input should be greater than or equal to 1" in str(caught.value)


@pytest.mark.usefixtures("registered")
def test_the_language_knows_it(tmp_path: Path) -> None:
    plan = Library(directory(tmp_path / "good")).compile("post")
    assert plan.templates["note"].variants["pigeon"]["note"] == "Hi {{ customer.first_name }}"
    cases = [
        ("email:\n  subject: Hi\n  text: Hi\n", "template 'note' has no pigeon variant"),
        ("pigeon:\n  nte: Hi\n", "unknown key 'nte': expected one of note, ring, found 'nte'"),
        (
            "pigeon:\n  note: Hi\n  ring: " + "[" * 40 + "]" * 40 + "\n",
            "3:9: expected at most 32 levels of nesting",
        ),
        ("pigeon:\n  note: '{{ oops'\n", "Liquid syntax error"),
    ]
    for i, (template, message) in enumerate(cases):
        with pytest.raises(DefinitionError) as caught:
            Library(directory(tmp_path / str(i), template=template)).compile("post")
        assert message in str(caught.value)
    with pytest.raises(DefinitionError, match=r"expected a channel \(.*, pigeon\)"):
        Library(directory(tmp_path / "fax", JOURNEY.replace("pigeon", "fax"))).compile("post")


@pytest.mark.usefixtures("registered")
async def test_a_worker_delivers_it(
    temporal_server: DevServer, temporal: Client, tmp_path: Path, sky: pigeon.Sky
) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text(
        f"directory = '{directory(tmp_path / 'journeys')}'\n"
        f"[temporal]\naddress = '{temporal_server.address}'\ntask_queue = 'pigeons'\n"
        f"[store]\nurl = 'sqlite:///{tmp_path}/store.db'\n"
        "[pigeon]\ncoop = 'west'\nbatch_size = 7\nrate_limit = 50.0\n"
    )
    settings = load_settings(path, environ={"JOURNEYS_PIGEON_KEY": "s3cret"})
    sky.storms["north"] = 1  # the first flight turns back: retried
    people = [
        {"id": "p1", "first_name": "Pia", "loft": "north", "colour": "blue"},
        {"id": "p2", "first_name": "Per", "loft": "Up There!"},
        {"id": "p3", "first_name": "Pol", "loft": "east"},
        {"id": "p4", "first_name": "Pam"},
    ]
    async with (
        running_worker(settings, client=temporal) as workers,
        await JourneysClient.connect(settings) as client,
    ):
        limits = {
            w.task_queue: w.config().get("max_task_queue_activities_per_second") for w in workers
        }
        assert limits[channel_queue("pigeons", "pigeon")] == 50.0
        assert client.batch_sizes["pigeon"] == 7
        handle = await client.trigger("post", people, cohorts=True)  # in batches of 7
        await eventually(
            lambda: client.status(handle.trigger_id),
            lambda s: s.counts == {"completed": 4},
            what="the cohort's end",
        )
        states = {}
        for person in people:
            [message] = await client.messages(recipient=person["id"])
            states[person["id"]] = (message.state, message.reason)
    assert states == {
        "p1": ("sent", None),
        "p2": ("skipped", "invalid address: invalid loft 'Up There!'"),
        "p3": ("failed", "no loft east"),
        "p4": ("skipped", "no address"),
    }
    assert sky.storms == {"north": 0}  # the storm was met, and the flight retried
    [flight] = sky.carried
    assert flight["coop"] == "west" and flight["loft"] == "north"
    assert flight["note"] == "Hi Pia" and flight["ring"] == {"colour": "blue", "band": 7}
