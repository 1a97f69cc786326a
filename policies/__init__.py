"""Torch modules: Gaussian MLP policy, value function, running observation normalizer."""

from policies.gaussian import GaussianPolicy, entropy, log_prob, mean_kl
from policies.normalizer import RunningNormalizer, combine_moments
from policies.value import ValueFunction

__all__ = ["GaussianPolicy", "RunningNormalizer", "ValueFunction", "combine_moments", "entropy", "log_prob", "mean_kl"]
