"""Errors a user can fix: the CLI prints them as one line, without a traceback.

The base class and :class:`TaskError` belong to the simulation layer, which
raises them and imports nothing of ``app``; they are re-exported here, the very
same classes, so ``except PolicylabError`` catches what ``envs`` raises.
"""

from envs.errors import PolicylabError, TaskError


class ConfigError(PolicylabError):
    """A configuration file, key, value or override is invalid."""


class CheckpointError(PolicylabError):
    """A checkpoint or run directory is missing, corrupt or incompatible."""


class TrainingDiverged(PolicylabError):
    """Updates kept producing non-finite numbers; the run stopped."""


__all__ = ["CheckpointError", "ConfigError", "PolicylabError", "TaskError", "TrainingDiverged"]
