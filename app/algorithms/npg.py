"""The natural policy gradient (seed lecture 002, Algorithm 2): TRPO's direction and length, no line search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from app.algorithms.numerics import LineSearchResult, flat_params, set_flat_params
from app.algorithms.trpo import TRPO, NaturalGradientConfig
from app.params import param


@dataclass(frozen=True)
class NPGConfig(NaturalGradientConfig):
    name: Literal["npg"] = param("npg", "natural policy gradient (full natural step, no line search)")


class NPG(TRPO):
    """theta <- theta + sqrt(2 delta / s^T F s) s with s = F^-1 g: the step whose quadratic-model KL is delta."""

    def take_step(
        self, full_step: Tensor, evaluate: Callable[[], tuple[float, float]], surrogate_before: float
    ) -> LineSearchResult:
        set_flat_params(self.params, flat_params(self.params) + full_step)
        surrogate_after, kl = evaluate()
        return LineSearchResult(True, 1.0, 0, surrogate_after - surrogate_before, kl)
