"""core.profiles over a real YAML file: add/use/rm/show, masking, refusals."""

from __future__ import annotations

import stat

import pytest
import yaml

from streamctl.core.profiles import (
    ProfileView,
    add_profile,
    list_profiles,
    remove_profile,
    show_profile,
    use_profile,
)
from streamctl.errors import BadInput, NotFound, Refused


def test_add_writes_the_spec_shape(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cfg" / "config.yaml"
    add_profile(path, "local", url="redis://localhost:6379/0")
    add_profile(
        path,
        "prod",
        url="rediss://streams.internal:6380/0",
        username="ops",
        password_env="PROD_REDIS_PASSWORD",
        ca_cert="/etc/ssl/internal-ca.pem",
        cluster=True,
    )
    assert yaml.safe_load(path.read_text()) == {
        "default": "local",
        "profiles": {
            "local": {"url": "redis://localhost:6379/0"},
            "prod": {
                "url": "rediss://streams.internal:6380/0",
                "username": "ops",
                "password_env": "PROD_REDIS_PASSWORD",
                "ca_cert": "/etc/ssl/internal-ca.pem",
                "cluster": True,
            },
        },
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [(p.name, p.default) for p in list_profiles(path)] == [("local", True), ("prod", False)]


def test_show_masks_secrets(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(
        "default: dev\nprofiles:\n"
        "  dev: {url: 'redis://:hunter2@dev:6379/0', password: s3cret}\n"
        "  prod: {url: 'rediss://p:6380', password_env: PROD_PW, timeout: 2}\n"
    )
    assert show_profile(path) == ProfileView(
        name="dev", default=True, url="redis://:***@dev:6379/0", password="***"
    )
    assert show_profile(path, "prod").password_env_set is False
    monkeypatch.setenv("PROD_PW", "x")
    assert show_profile(path, "prod") == ProfileView(
        name="prod",
        default=False,
        url="rediss://p:6380",
        password_env="PROD_PW",
        password_env_set=True,
        timeout=2.0,
    )


def test_refusals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    with pytest.raises(BadInput, match="the URL holds a password"):
        add_profile(path, "dev", url="redis://:pw@dev:6379")
    assert not path.exists()
    with pytest.raises(BadInput, match="not both"):
        add_profile(path, "dev", url="redis://:pw@dev", password_env="PW", store_password=True)
    with pytest.raises(BadInput, match="give the name of an environment variable"):
        add_profile(path, "dev", url="redis://dev", password_env="hunter 2")
    with pytest.raises(BadInput, match="bad profile name"):
        add_profile(path, "-x", url="redis://dev")
    with pytest.raises(BadInput, match="bad URL"):
        add_profile(path, "x", url="http://dev")
    add_profile(path, "dev", url="redis://:pw@dev", store_password=True)
    with pytest.raises(Refused, match="rerun with --force"):
        add_profile(path, "dev", url="redis://other")
    add_profile(path, "dev", url="redis://other", replace=True)
    assert show_profile(path, "dev").url == "redis://other"
    with pytest.raises(NotFound, match=r"no profile 'nope' in .* \(profiles: dev\)"):
        use_profile(path, "nope")
    with pytest.raises(NotFound):
        remove_profile(path, "nope")


def test_use_and_remove(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    add_profile(path, "a", url="redis://a")
    add_profile(path, "b", url="redis://b")
    assert use_profile(path, "b").default is True
    assert yaml.safe_load(path.read_text())["default"] == "b"
    add_profile(path, "c", url="redis://c", make_default=True)
    assert show_profile(path).name == "c"
    assert remove_profile(path, "a").was_default is False
    removed = remove_profile(path, "c")
    assert removed.was_default is True
    assert yaml.safe_load(path.read_text()) == {"profiles": {"b": {"url": "redis://b"}}}
    with pytest.raises(NotFound, match="no default profile"):
        show_profile(path)
    add_profile(path, "d", url="redis://d")  # no default: the new one becomes it
    assert show_profile(path).name == "d"


def test_a_broken_file_is_bad_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text("profiles: [unclosed\n")
    with pytest.raises(BadInput, match="cannot read config file"):
        list_profiles(path)
    assert list_profiles(tmp_path / "missing.yaml") == []
