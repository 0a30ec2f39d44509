import os
from typing import Annotated, Optional

import typer

from streamctl.cli._complete import COMPLETE_VAR, enable_shell_completion
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.errors import BadInput

SHELLS = ("bash", "zsh", "fish")
# where each script ships in completions/ (zsh autoloads functions named _<command>)
SCRIPT_FILES = {"bash": "streamctl.bash", "zsh": "_streamctl", "fish": "streamctl.fish"}
PROG_NAME = "streamctl"


def register(app: typer.Typer) -> None:
    enable_shell_completion()
    app.command("completion")(completion)


def completion_script(shell: str) -> str:
    """The completion script for a shell: what `completion SHELL` prints and completions/ holds."""
    if shell not in SHELLS:
        raise BadInput(f"bad shell {shell!r}: accepted {', '.join(SHELLS)}")
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell)
    return script.rstrip("\n") + "\n"


def _detect_shell() -> str:
    name = os.path.basename(os.environ.get("SHELL", ""))
    if name in SHELLS:
        return name
    raise BadInput(f"give the shell: streamctl completion {'|'.join(SHELLS)}")


def completion(
    ctx: typer.Context,
    shell: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(
            help="bash, zsh or fish (default: from $SHELL).",
            show_default=False,
            autocompletion=lambda: list(SHELLS),
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Print the shell completion script. Commands, options, stream and group names complete
    (names from the server, when one answers).

    \b
    Examples:
      eval "$(streamctl completion bash)"          # in ~/.bashrc
      streamctl completion zsh > ~/.zfunc/_streamctl
      streamctl completion fish > ~/.config/fish/completions/streamctl.fish
    """
    app_ctx = state(ctx)
    requested = app_ctx.requested_format(output)
    name = (shell or _detect_shell()).lower()
    script = completion_script(name)
    if requested in ("auto", "table"):
        app_ctx.write(script)  # the script itself, whatever the terminal
        return
    from streamctl.render.serialize import dump

    app_ctx.write(dump({"shell": name, "file": SCRIPT_FILES[name], "script": script}, requested))
