"""Settings precedence, profiles, and secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamctl import config
from streamctl.errors import BadInput


def write_config(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


PROFILES = """
default: local
profiles:
  local: {url: "redis://localhost:6379/0"}
  staging: {url: "redis://staging:6379/1", timeout: 2}
  prod:
    url: "rediss://streams.internal:6380/0"
    username: ops
    password_env: PROD_REDIS_PASSWORD
    ca_cert: /etc/ssl/internal-ca.pem
    cluster: true
"""


def test_default_without_anything(tmp_path: Path) -> None:
    s = config.resolve_settings(config_path=str(tmp_path / "missing.yaml"))
    assert s.url == "redis://localhost:6379/0"
    assert s.timeout == 5.0
    assert s.cluster is None


def test_url_flag_beats_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCTL_URL", "redis://env:1/0")
    path = write_config(tmp_path / "c.yaml", PROFILES)
    s = config.resolve_settings(url="redis://flag:2/0", profile="staging", config_path=path)
    assert s.url == "redis://flag:2/0"


def test_streamctl_url_then_redis_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    monkeypatch.setenv("REDIS_URL", "redis://redisurl:1/0")
    assert config.resolve_settings(config_path=path).url == "redis://redisurl:1/0"
    monkeypatch.setenv("STREAMCTL_URL", "redis://streamctl:1/0")
    assert config.resolve_settings(config_path=path).url == "redis://streamctl:1/0"


def test_profile_flag_beats_env_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    monkeypatch.setenv("REDIS_URL", "redis://env:1/0")
    s = config.resolve_settings(profile="staging", config_path=path)
    assert (s.url, s.timeout, s.profile) == ("redis://staging:6379/1", 2.0, "staging")


def test_env_profile_and_default_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    assert config.resolve_settings(config_path=path).profile == "local"
    monkeypatch.setenv("STREAMCTL_PROFILE", "staging")
    assert config.resolve_settings(config_path=path).profile == "staging"


def test_password_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    monkeypatch.setenv("PROD_REDIS_PASSWORD", "s3cret-value")
    s = config.resolve_settings(profile="prod", config_path=path)
    assert s.password == "s3cret-value"
    assert s.username == "ops"
    assert s.ca_cert == "/etc/ssl/internal-ca.pem"
    assert s.cluster is True
    assert config.scrub("failed with s3cret-value inside", s.secrets) == "failed with *** inside"
    assert s.secrets == ("s3cret-value",)


def test_missing_password_env_is_a_usage_error(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    with pytest.raises(BadInput, match=r"PROD_REDIS_PASSWORD, which is not set"):
        config.resolve_settings(profile="prod", config_path=path)


def test_unknown_profile_lists_the_known(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    with pytest.raises(BadInput, match=r"no profile 'nope' .*\(profiles: local, prod, staging\)"):
        config.resolve_settings(profile="nope", config_path=path)


def test_flags_override_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "c.yaml", PROFILES)
    monkeypatch.setenv("PROD_REDIS_PASSWORD", "pw123")
    s = config.resolve_settings(
        profile="prod", config_path=path, timeout=9, cluster=False, tls_ca="/tmp/ca.pem"
    )
    assert (s.timeout, s.cluster, s.ca_cert) == (9, False, "/tmp/ca.pem")


def test_tls_ca_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCTL_TLS_CA", "/env/ca.pem")
    s = config.resolve_settings(url="rediss://h:1/0", config_path=str(tmp_path / "x.yaml"))
    assert s.ca_cert == "/env/ca.pem"


@pytest.mark.parametrize(
    "text",
    [
        "- a\n- b\n",
        "profiles: [1, 2]\n",
        "profiles:\n  x: {host: h}\n",
        "profiles: {x: {url: 'redis://h', colour: red}}\n",
    ],
)
def test_malformed_config_is_a_usage_error(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path / "c.yaml", text + "default: x\n" if "x" in text else text)
    with pytest.raises(BadInput) as info:
        config.resolve_settings(config_path=path, profile="x")
    assert "\n" not in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", "profiles: {x: [\n")
    with pytest.raises(BadInput, match="cannot read config file"):
        config.resolve_settings(config_path=path, profile="x")


@pytest.mark.parametrize("url", ["http://h:1", "localhost:6379", "redis//h"])
def test_bad_url_scheme(url: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"accepted redis://"):
        config.resolve_settings(url=url, config_path=str(tmp_path / "x.yaml"))


def test_bad_timeout(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="--timeout"):
        config.resolve_settings(timeout=0, config_path=str(tmp_path / "x.yaml"))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://:pw@host/1", "rediss://:***@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert config.mask_url(url) == masked


def test_scrub_masks_urls_in_free_text() -> None:
    text = "Error connecting to redis://bob:hunter2@db:6379/0 now"
    assert config.scrub(text) == "Error connecting to redis://bob:***@db:6379/0 now"


def test_config_file_is_not_read_when_a_url_is_given(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", "this: [is not: valid yaml\n")
    # a URL makes the config irrelevant: no error from the broken file
    assert config.resolve_settings(url="redis://h:1/0", config_path=path).url == "redis://h:1/0"


def test_save_config_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.yaml"
    config.save_config(path, {"profiles": {"a": {"url": "redis://h:1/0"}}})
    assert path.stat().st_mode & 0o777 == 0o600
    assert config.load_config(path) == {"profiles": {"a": {"url": "redis://h:1/0"}}}


def test_scrub_leaves_the_usage_text_alone() -> None:
    text = "bad URL 'x': accepted redis://[user:pass@]host:port/db"
    assert config.scrub(text) == text
