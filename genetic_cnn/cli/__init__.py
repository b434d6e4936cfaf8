"""cli: `genetic-cnn …`, its argument parsing and every subcommand; nothing else imports it.
Imports anything; each command imports its heavy tool inside the function, so `--help` loads no torch."""

from genetic_cnn.cli.app import main

__all__ = ["main"]
