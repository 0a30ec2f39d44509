import typer

from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.errors import CheckFailed
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(ctx: typer.Context, output: OutputOption = None) -> None:
    """Is this server a safe home for streams, and what can it do?

    Reports the server's kind and version, its topology, its capabilities (asked of the
    server, not guessed from the version) and findings with a level and what to do: an
    eviction policy that can delete streams, no persistence, replicas far behind, commands
    the user may not run. What the server will not tell (CONFIG or INFO refused) is
    `unknown`, not a failure. Exit 5 when a finding is at error level (a CI gate), else 0.

    \b
    Examples:
      streamctl -u redis://prod-streams:6379/0 doctor
      streamctl doctor -o json | jq '.findings[] | select(.level != "ok")'
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render import doctor as render_doctor

    report = app_ctx.sc.doctor()
    app_ctx.emit(report, fmt, render_doctor.doctor_view)
    if report.failed:
        errors = [f for f in report.findings if f.level == "error"]
        raise CheckFailed(
            f"{count_noun(len(errors), 'finding', 'findings', grouped=False)} at error level: "
            + "; ".join(f.check for f in errors)
        )
