"""The helper every typed config dataclass of ``app`` declares its fields with.

It is the simulation layer's own (``envs.config.param``): the bottom layer owns it, so that
``envs`` needs nothing of ``app`` and every section of the run's configuration carries the same
field metadata (``help``, ``low``/``high``, ``low_open``/``high_open``) that ``app.config`` checks.
"""

from envs.config import param

__all__ = ["param"]
