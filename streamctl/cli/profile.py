from pathlib import Path
from typing import Annotated, Optional

import typer

from streamctl.cli.context import AppContext, state
from streamctl.cli.options import OutputOption

profile_app = typer.Typer(
    name="profile",
    help="Manage the named connections (profiles) of the config file.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")


def _path(app_ctx: AppContext) -> Path:
    from streamctl.config import default_config_path

    return Path(app_ctx.config) if app_ctx.config else default_config_path()


def _complete_profile(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        from streamctl.config import default_config_path, load_config

        config = ctx.find_root().params.get("config")
        data = load_config(Path(config) if config else default_config_path())
        return sorted(str(n) for n in (data.get("profiles") or {}) if str(n).startswith(incomplete))
    except Exception:  # noqa: BLE001 - completion must stay silent
        return []


@profile_app.command("ls")
def profile_ls(ctx: typer.Context, output: OutputOption = None) -> None:
    """List the profiles (* marks the default). Passwords are never shown.

    \b
    Example:
      streamctl profile ls
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    from streamctl.core.profiles import list_profiles
    from streamctl.render.health import profiles_table

    app_ctx.emit(list_profiles(_path(app_ctx)), fmt, profiles_table)


@profile_app.command("show")
def profile_show(
    ctx: typer.Context,
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(
            help="The profile (default: the default one).",
            show_default=False,
            autocompletion=_complete_profile,
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Show a profile, its secrets masked.

    \b
    Example:
      streamctl profile show prod -o json
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    from streamctl.core.profiles import show_profile
    from streamctl.render.health import profile_view

    app_ctx.emit(show_profile(_path(app_ctx), name), fmt, profile_view)


@profile_app.command("add")
def profile_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new profile's name.")],
    url: Annotated[
        str,
        typer.Option(
            "--url",
            "-u",
            help="redis://host:port/db, rediss://... (TLS) or unix:///path.sock",
            metavar="URL",
        ),
    ],
    username: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--username", help="ACL user name.", metavar="NAME"),
    ] = None,
    password_env: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--password-env",
            help="The environment variable that holds the password (kept out of the file).",
            metavar="VAR",
        ),
    ] = None,
    ca_cert: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--ca-cert", help="CA bundle for rediss://.", metavar="PATH"),
    ] = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="The server is a Redis Cluster.")
    ] = False,
    timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--timeout", help="Connect and command timeout.", metavar="SECONDS"),
    ] = None,
    make_default: Annotated[
        bool, typer.Option("--default", help="Make it the default profile.")
    ] = False,
    store_password: Annotated[
        bool,
        typer.Option(
            "--store-password",
            help="Accept a password in the URL (stored in plain text; prefer --password-env).",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a profile of that name.")] = False,
    output: OutputOption = None,
) -> None:
    """Add a profile. The first one becomes the default.

    \b
    Examples:
      streamctl profile add local --url redis://localhost:6379/0
      streamctl profile add prod --url rediss://streams.internal:6380/0 --username ops \\
          --password-env PROD_REDIS_PASSWORD --ca-cert /etc/ssl/internal-ca.pem --cluster
    """
    app_ctx = state(ctx)
    app_ctx.requested_format(output)  # a bad -o fails before the file is touched
    from streamctl.core.profiles import add_profile, url_password

    path = _path(app_ctx)
    added = add_profile(
        path,
        name,
        url=url,
        username=username,
        password_env=password_env,
        ca_cert=ca_cert,
        cluster=True if cluster else None,
        timeout=timeout,
        replace=force,
        store_password=store_password,
        make_default=make_default,
    )
    if url_password(url) is not None:
        app_ctx.notice(
            f"warning: the password is stored in plain text in {path} (readable by you only)"
        )
    app_ctx.notice(
        f"{'replaced' if force else 'added'} profile {name!r} in {path}"
        + (" (the default)" if added.default else "")
    )
    _emit_if_asked(app_ctx, added, output)


@profile_app.command("use")
def profile_use(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help="The profile to make the default.", autocompletion=_complete_profile),
    ],
    output: OutputOption = None,
) -> None:
    """Make a profile the default (used when no --url, --profile or STREAMCTL_URL is given).

    \b
    Example:
      streamctl profile use prod
    """
    app_ctx = state(ctx)
    app_ctx.requested_format(output)
    from streamctl.core.profiles import use_profile

    path = _path(app_ctx)
    chosen = use_profile(path, name)
    app_ctx.notice(f"default profile is now {name!r} ({chosen.url}) in {path}")
    _emit_if_asked(app_ctx, chosen, output)


@profile_app.command("rm")
def profile_rm(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="The profile to remove.", autocompletion=_complete_profile)
    ],
    output: OutputOption = None,
) -> None:
    """Remove a profile. Removing the default one leaves no default.

    \b
    Example:
      streamctl profile rm staging
    """
    app_ctx = state(ctx)
    app_ctx.requested_format(output)
    from streamctl.core.profiles import remove_profile

    path = _path(app_ctx)
    removed = remove_profile(path, name)
    app_ctx.notice(
        f"removed profile {name!r} from {path}"
        + (
            "; there is no default profile now (streamctl profile use NAME)"
            if removed.was_default
            else ""
        )
    )
    _emit_if_asked(app_ctx, removed, output)


def _emit_if_asked(app_ctx: AppContext, model: object, output: str | None) -> None:
    """Changes are reported on stderr; a data format asked for explicitly also gets the data."""
    requested = app_ctx.requested_format(output)
    if requested in ("auto", "table"):
        return
    import streamctl.render.health  # noqa: F401 - registers ProfileView's plain-data shape

    app_ctx.emit(model, requested)
