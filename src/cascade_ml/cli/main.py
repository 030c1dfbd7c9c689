"""Entry point for the `cascade-ml` command: sub-commands live in one module per area."""

from __future__ import annotations

import logging
import sys

import typer

from cascade_ml.errors import CascadeError

app = typer.Typer(
    help="cascade-ml: point-in-time volatility and liquidation-cascade forecasts for crypto perps, "
    "turned into hedge ratios and leverage caps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Set up logging once for every command."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    """Attach each area's commands (imported here so `--help` lists them all)."""
    from cascade_ml.cli import (
        data_cmds,
        features_cmds,
        live_cmds,
        model_cmds,
        panel_cmds,
        pipeline_cmds,
        policy_cmds,
        serve_cmds,
    )

    for module in (pipeline_cmds, data_cmds, features_cmds, model_cmds, policy_cmds, serve_cmds,
                   live_cmds, panel_cmds):
        module.register(app)


_register()


def main() -> None:
    """Run the CLI; a user error prints one line and exits 2, never a traceback."""
    try:
        code = app(standalone_mode=False)  # non-standalone click returns typer.Exit's code
        if isinstance(code, int) and code:
            sys.exit(code)
    except CascadeError as exc:
        typer.secho(f"error: {exc.message}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
