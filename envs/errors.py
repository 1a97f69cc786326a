"""Errors a user can fix, raised by the simulation layer.

:class:`PolicylabError` is the base of every such error in policylab. It is
defined here, at the bottom layer, so that ``envs`` imports nothing of ``app``
while ``app.errors`` re-exports these very classes: a handler that catches
``app.errors.PolicylabError`` catches what ``envs`` raises.
"""

from __future__ import annotations


class PolicylabError(Exception):
    """Base class: the message says what was wrong and what is valid (front ends print it as one line)."""


class TaskError(PolicylabError):
    """An unknown task name or environment id, or a task setting its backend cannot honour."""


__all__ = ["PolicylabError", "TaskError"]
