"""Entry point of the `cryofm` command: the command group and its error handling.

Every command lives in its own module and registers itself on `cli`.  Errors that come from
the user's input (`CryofmInputError`, `ValueError`, `OSError`) are printed as one line on
stderr, ``cryofm: error: ...``, with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys

import click

from cryofm.errors import Cancelled, CryofmInputError

__all__ = ["cli", "main"]

# Modules that define commands; each one decorates its functions with @cli.command().
_COMMAND_MODULES = (
    "cryofm.cli.maps",  # info, fsc
    "cryofm.cli.restore",  # denoise, wedge, upsample
    "cryofm.cli.training",  # data simulate/maps, train, sample
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.version_option(package_name="cryofm")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """cryofm: restore cryo-EM and cryo-ET maps with a generative prior of protein density."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command module not yet present in this build
            if exc.name != name:
                raise


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 internal error, 2 bad input)."""
    _register_commands()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="cryofm", standalone_mode=False, obj={"argv": ["cryofm", *args]})
    except click.exceptions.Abort:
        click.echo("cryofm: aborted", err=True)
        return 130
    except click.ClickException as exc:  # usage errors: bad option, missing argument
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Cancelled:
        click.echo("cryofm: cancelled", err=True)
        return 130
    except (CryofmInputError, ValueError, OSError) as exc:
        if debug:
            raise
        click.echo(f"cryofm: error: {_one_line(exc)}", err=True)
        return 2
    except Exception as exc:  # a bug in cryofm: say so, keep it to one line unless --debug
        if debug:
            raise
        click.echo(
            f"cryofm: internal error ({type(exc).__name__}): {_one_line(exc)} "
            "(run with --debug for the traceback and report it)",
            err=True,
        )
        return 1
    # without standalone mode click returns ctx.exit()'s code, or the command's return value
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
