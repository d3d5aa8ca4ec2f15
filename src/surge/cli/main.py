"""The `surge` command.

Subcommands are imported when they are used, not all at start-up: importing every
command module pulled in scipy, plotly and starlette, and `surge --version` took
1.3 s (0.75 s of it scipy, for `surge capacity`). Each `surge run` paid for it, and
the test suite, which starts the CLI several hundred times, paid for it every time.
"""

from __future__ import annotations

import signal
from importlib import import_module

import click

from surge._version import __version__

# name -> "module:attribute", in the order `surge --help` lists them
COMMANDS: dict[str, str] = {
    "run": "surge.cli.run_cmd:run_cmd",
    "hit": "surge.cli.hit_cmd:hit_cmd",
    "breakpoint": "surge.cli.breakpoint_cmd:breakpoint_cmd",
    "replay": "surge.cli.replay_cmd:replay_cmd",
    "model": "surge.cli.model_cmd:model_cmd",
    "demo": "surge.cli.demo_cmd:demo",
    "runs": "surge.cli.store_cmds:runs_group",
    "baseline": "surge.cli.store_cmds:baseline_group",
    "compare": "surge.cli.compare_cmd:compare_cmd",
    "gate": "surge.cli.compare_cmd:gate_cmd",
    "history": "surge.cli.history_cmd:history_cmd",
    "dashboard": "surge.cli.dashboard_cmd:dashboard_cmd",
    "explain": "surge.cli.explain_cmd:explain_cmd",
    "capacity": "surge.cli.capacity_cmd:capacity_cmd",
    "profile": "surge.cli.profile_cmd:profile_group",
    "report": "surge.cli.report_cmd:report_cmd",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="surge")
def cli() -> None:
    """surge: load testing that tells the truth.

    \b
    Start here:
      surge demo serve                      # a demo shop API on 127.0.0.1:8000
      surge run examples/shop.py            # load test it with the example scenario
      surge hit http://127.0.0.1:8000/health -c 50 -d 10s
    """


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (`timeout`, a CI job cancelled, `kill`) stops like Ctrl-C: the run ends
    # gracefully and its summary is still written, instead of dying with meta.json alone.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    cli()
