"""Policy-optimization algorithms behind one interface (:mod:`app.algorithms.base`).

Adding an algorithm: one module with its config dataclass and class, and one line in
:data:`ALGORITHMS`. ``app.config`` types the ``algo`` section from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.algorithms.a2c import A2C, A2CConfig
from app.algorithms.base import Algorithm, Batch, UpdateResult
from app.algorithms.collective import SINGLE, Collective
from app.algorithms.npg import NPG, NPGConfig
from app.algorithms.ppo import PPO, PPOConfig
from app.algorithms.trpo import TRPO, TRPOConfig
from app.algorithms.vpg import VPG, VPGConfig

if TYPE_CHECKING:
    from app.config import Config
    from policies import GaussianPolicy, ValueFunction


@dataclass(frozen=True)
class AlgorithmSpec:
    config: type  # the frozen dataclass that types the ``algo`` section
    cls: Any  # constructed as cls(policy, value, algo_cfg, value_cfg, total_updates, collective)


# algo.name -> its config and class: the registry.
ALGORITHMS: dict[str, AlgorithmSpec] = {
    "trpo": AlgorithmSpec(TRPOConfig, TRPO),
    "npg": AlgorithmSpec(NPGConfig, NPG),
    "ppo": AlgorithmSpec(PPOConfig, PPO),
    "a2c": AlgorithmSpec(A2CConfig, A2C),
    "vpg": AlgorithmSpec(VPGConfig, VPG),
}


def make_algorithm(
    cfg: Config,
    policy: GaussianPolicy,
    value: ValueFunction,
    total_updates: int,
    collective: Collective = SINGLE,
) -> Algorithm:
    """The algorithm ``cfg.algo.name`` names, bound to the networks it updates and to the ranks' collective."""
    return ALGORITHMS[cfg.algo.name].cls(policy, value, cfg.algo, cfg.value, total_updates, collective)


__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmSpec", "Batch", "UpdateResult", "make_algorithm"]
