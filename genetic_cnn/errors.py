"""Errors a user can fix: the CLI prints their message on one line and exits with status 2."""


class UserError(Exception):
    """Bad input (a genome, a config, a dataset folder, a run folder): the message says how to fix it."""
