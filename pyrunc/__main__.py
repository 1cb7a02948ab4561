"""`python -m pyrunc` is the CLI."""

from pyrunc.cli import run

run()
