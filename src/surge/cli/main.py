"""The `surge` command."""

from __future__ import annotations

import click

from surge._version import __version__
from surge.cli.breakpoint_cmd import breakpoint_cmd
from surge.cli.capacity_cmd import capacity_cmd
from surge.cli.compare_cmd import compare_cmd, gate_cmd
from surge.cli.dashboard_cmd import dashboard_cmd
from surge.cli.demo_cmd import demo
from surge.cli.explain_cmd import explain_cmd
from surge.cli.history_cmd import history_cmd
from surge.cli.hit_cmd import hit_cmd
from surge.cli.model_cmd import model_cmd
from surge.cli.profile_cmd import profile_group
from surge.cli.replay_cmd import replay_cmd
from surge.cli.report_cmd import report_cmd
from surge.cli.run_cmd import run_cmd
from surge.cli.store_cmds import baseline_group, runs_group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="surge")
def cli() -> None:
    """surge: load testing that tells the truth.

    \b
    Start here:
      surge demo serve                      # a demo shop API on 127.0.0.1:8000
      surge run examples/shop.py            # load test it with the example scenario
      surge hit http://127.0.0.1:8000/health -c 50 -d 10s
    """


cli.add_command(run_cmd)
cli.add_command(hit_cmd)
cli.add_command(breakpoint_cmd)
cli.add_command(replay_cmd)
cli.add_command(model_cmd)
cli.add_command(demo)
cli.add_command(runs_group)
cli.add_command(baseline_group)
cli.add_command(compare_cmd)
cli.add_command(gate_cmd)
cli.add_command(history_cmd)
cli.add_command(dashboard_cmd)
cli.add_command(explain_cmd)
cli.add_command(capacity_cmd)
cli.add_command(profile_group)
cli.add_command(report_cmd)


def main() -> None:
    cli()
