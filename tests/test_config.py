"""journeys.toml and JOURNEYS_* overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeys import ConfigurationError, load_settings


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.temporal.address == "localhost:7233"
    assert settings.store.url.startswith("sqlite:///")


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text(
        'directory = "flows"\n[temporal]\naddress = "t:7233"\n'
        '[email]\nhost = "smtp.example.com"\nport = 587\nsecurity = "starttls"\n'
    )
    settings = load_settings(
        path,
        environ={
            "JOURNEYS_TEMPORAL_ADDRESS": "other:7233",
            "JOURNEYS_EMAIL_PASSWORD": "s3cret",
            "JOURNEYS_STORE_URL": "postgresql://u@db/journeys",
        },
    )
    assert settings.directory == "flows"
    assert settings.temporal.address == "other:7233"
    assert settings.email.port == 587 and settings.email.security == "starttls"
    assert settings.email.password == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.store.url == "postgresql://u@db/journeys"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[email]\npassword = "x"\n', "secrets are read only from the environment"),
        ("[emial]\nhost = 'x'\n", "emial: Extra inputs are not permitted"),
        ("[email]\nport = 'many'\n", "email.port"),
        ("[email]\nsecurity = 'ssl'\n", "email.security"),
        ("[email\n", "invalid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.")):
        load_settings(path, environ={})


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
