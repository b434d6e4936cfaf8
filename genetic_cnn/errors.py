"""Errors a user can fix: the CLI prints their message on one line and exits with status 2."""


class UserError(Exception):
    """Bad input (a genome, a config, a dataset folder, a run folder): the message says how to fix it."""


class DatasetError(UserError):
    """Dataset files that are missing or unreadable, data that cannot be used, or a split that cannot be made."""
