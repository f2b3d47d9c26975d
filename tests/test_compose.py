"""docker-compose.yml is valid against the Compose specification's JSON schema."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import yaml

from tests.helpers import REPO


def test_compose_file_matches_the_specification() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    jsonschema.validate(compose, schema)
    services = compose["services"]
    assert {"temporal", "temporal-ui", "postgresql", "mailpit", "worker"} <= set(services)
    worker_env = services["worker"]["environment"]
    assert worker_env["JOURNEYS_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert worker_env["JOURNEYS_STORE_URL"].startswith("postgresql://")


def test_compose_schema_rejects_a_broken_file() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    try:
        jsonschema.validate({"services": {"worker": {"image": 7, "bogus": True}}}, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("the schema accepted a broken compose file")
