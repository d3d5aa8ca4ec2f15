"""The lazily loaded command table: every entry imports, and `surge --help` lists them all."""

from __future__ import annotations

import click
from click.testing import CliRunner

from surge.cli.main import COMMANDS, cli


def test_every_command_in_the_table_loads_under_its_name():
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert isinstance(cmd, click.Command) and cmd.name == name, name
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_lists_every_command():
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in COMMANDS:
        assert f"  {name} " in out, name
