"""`streamctl profile ...`: output, masking, exit codes, and that a profile really connects."""

from __future__ import annotations

import yaml


def config_args(tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--config", str(tmp_path / "config.yaml")]


def test_add_ls_show_use_rm(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_args(tmp_path)
    res = run_cli([*cfg, "profile", "ls", "-o", "json"])
    assert (res.exit_code, res.json()) == (0, [])

    res = run_cli([*cfg, "profile", "add", "local", "--url", "redis://localhost:6379/0"])
    assert (res.exit_code, res.stdout) == (0, "")
    assert res.stderr == f"added profile 'local' in {tmp_path / 'config.yaml'} (the default)\n"
    res = run_cli(
        [*cfg, "profile", "add", "prod", "--url", "rediss://streams.internal:6380/0",
         "--username", "ops", "--password-env", "PROD_REDIS_PASSWORD",
         "--ca-cert", "/etc/ssl/ca.pem", "--cluster", "-o", "json"]
    )  # fmt: skip
    assert res.exit_code == 0
    assert res.json() == {
        "name": "prod",
        "default": False,
        "url": "rediss://streams.internal:6380/0",
        "username": "ops",
        "password_env": "PROD_REDIS_PASSWORD",
        "ca_cert": "/etc/ssl/ca.pem",
        "cluster": True,
        "password_env_set": False,
    }

    res = run_cli([*cfg, "profile", "ls", "-o", "json"])
    assert [(p["name"], p["default"]) for p in res.json()] == [("local", True), ("prod", False)]

    res = run_cli([*cfg, "profile", "ls", "-o", "table"])
    rows = [line.split() for line in res.lines if line.strip()]
    assert rows[0] == ["profile", "url", "username", "password", "cluster"]
    assert rows[2] == ["*", "local", "redis://localhost:6379/0", "-", "-", "-"]
    assert rows[3] == [
        "prod", "rediss://streams.internal:6380/0", "ops", "$PROD_REDIS_PASSWORD", "(not", "set)",
        "yes",
    ]  # fmt: skip

    res = run_cli([*cfg, "profile", "use", "prod"])
    assert res.exit_code == 0 and res.stdout == ""
    assert res.stderr.startswith("default profile is now 'prod' (rediss://streams.internal:6380/0)")
    res = run_cli([*cfg, "profile", "show", "-o", "yaml"], env={"PROD_REDIS_PASSWORD": "x"})
    assert yaml.safe_load(res.stdout)["name"] == "prod"
    assert yaml.safe_load(res.stdout)["password_env_set"] is True

    res = run_cli([*cfg, "profile", "rm", "prod"])
    assert res.exit_code == 0
    assert res.stderr.endswith("there is no default profile now (streamctl profile use NAME)\n")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == {
        "profiles": {"local": {"url": "redis://localhost:6379/0"}}
    }


def test_show_masks_every_secret(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_args(tmp_path)
    res = run_cli(
        [
            *cfg,
            "profile",
            "add",
            "dev",
            "--url",
            "redis://admin:hunter2@dev:6379/0",
            "--store-password",
        ]
    )
    assert res.exit_code == 0
    assert res.stderr.startswith("warning: the password is stored in plain text in ")
    (tmp_path / "config.yaml").write_text(
        (tmp_path / "config.yaml").read_text() + "  lit: {url: 'redis://x', password: s3cret}\n"
    )
    for fmt in ("json", "yaml", "table"):
        for name in ("dev", "lit"):
            res = run_cli([*cfg, "profile", "show", name, "-o", fmt])
            assert res.exit_code == 0
            assert "hunter2" not in res.stdout and "s3cret" not in res.stdout
            assert "***" in res.stdout
        res = run_cli([*cfg, "profile", "ls", "-o", fmt])
        assert "hunter2" not in res.stdout and "s3cret" not in res.stdout
    res = run_cli([*cfg, "profile", "show", "dev", "-o", "json"])
    assert res.json() == {"name": "dev", "default": True, "url": "redis://admin:***@dev:6379/0"}
    res = run_cli([*cfg, "profile", "show", "lit", "-o", "table"])
    assert [line.split() for line in res.lines[:4]] == [
        ["profile", "lit"], ["url", "redis://x"], ["username", "-"], ["password", "***"],
    ]  # fmt: skip


def test_exit_codes(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_args(tmp_path)
    path = tmp_path / "config.yaml"
    res = run_cli([*cfg, "profile", "add", "dev", "--url", "redis://:pw@dev:6379"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "--password-env VAR" in res.stderr and "pw@" not in res.stderr
    assert not path.exists()
    assert run_cli([*cfg, "profile", "add", "dev", "--url", "redis://dev"]).exit_code == 0
    res = run_cli([*cfg, "profile", "add", "dev", "--url", "redis://other"])
    assert (res.exit_code, res.stderr) == (
        6,
        f"error: profile 'dev' already exists in {path}: rerun with --force to replace it\n",
    )
    res = run_cli([*cfg, "profile", "add", "dev", "--url", "redis://other", "--force"])
    assert res.exit_code == 0 and res.stderr.startswith("replaced profile 'dev'")
    for args in (["use", "nope"], ["rm", "nope"], ["show", "nope"]):
        res = run_cli([*cfg, "profile", *args])
        assert (res.exit_code, res.stderr) == (
            4,
            f"error: no profile 'nope' in {path} (profiles: dev)\n",
        )
    res = run_cli([*cfg, "profile", "add", "x", "--url", "http://x"])
    assert res.exit_code == 2
    res = run_cli([*cfg, "profile", "add", "x"])
    assert res.exit_code == 2 and "--url" in res.stderr
    path.write_text("profiles: [unclosed\n")
    res = run_cli([*cfg, "profile", "ls"])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: cannot read config file {path}")


def test_a_profile_connects(run_cli, tmp_path, one_server, r1) -> None:  # type: ignore[no-untyped-def]
    """add, use, then commands without -u reach the profile's server, with an ACL user whose
    password stays in the environment."""
    r1.xadd("orders", {"n": "1"}, id="1-0")
    r1.execute_command("ACL", "SETUSER", "ops", "on", ">s3cret-pw", "~*", "+@all")
    try:
        cfg = config_args(tmp_path)
        res = run_cli(
            [*cfg, "profile", "add", "test", "--url", one_server.url, "--username", "ops",
             "--password-env", "TEST_REDIS_PW"]
        )  # fmt: skip
        assert res.exit_code == 0
        res = run_cli(
            [*cfg, "check", "--max-length", "1", "-o", "json"], env={"TEST_REDIS_PW": "s3cret-pw"}
        )
        assert res.exit_code == 0, res.stderr
        assert res.json()["checks"][0]["stream"] == "orders"
        res = run_cli([*cfg, "check"])
        assert res.exit_code == 2
        assert res.stderr == (
            "error: profile 'test' takes its password from $TEST_REDIS_PW, which is not set\n"
        )
        res = run_cli([*cfg, "check"], env={"TEST_REDIS_PW": "wrong-pw"})
        assert res.exit_code == 3 and "wrong-pw" not in res.stderr
    finally:
        r1.execute_command("ACL", "DELUSER", "ops")
