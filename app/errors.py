"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class PolicylabError(Exception):
    """Base class: the message says what was wrong and what is valid."""


class ConfigError(PolicylabError):
    """A configuration file, key, value or override is invalid."""


class TaskError(PolicylabError):
    """An unknown task name or environment id."""


class CheckpointError(PolicylabError):
    """A checkpoint or run directory is missing, corrupt or incompatible."""


class TrainingDiverged(PolicylabError):
    """Updates kept producing non-finite numbers; the run stopped."""
