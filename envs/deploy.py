"""What a deployment controller is: one task as a robot's controller runs it (numpy over MuJoCo, no torch).

``app/deploy_sim.py`` runs one episode loop over any controller: reset -> (observation ->
ONNX policy -> optional latency and noise -> step)* -> episode statistics. The controller
is named by ``policy.json`` (``deployment.controller``: ``"module:Class"``, a module under
``envs`` that imports neither torch nor ``app``) and built from that same file, so a robot
integrator reads exactly what deploy-sim runs.

Contract (every array is float64 numpy):

- ``Controller.from_export(meta, seed)``: the controller for ``policy.json``'s content ``meta``;
  ``seed`` is the first episode's seed.
- ``reset(episode)``: starts episode ``episode`` (0, 1, ...), drawn the way the batched task
  draws it (held-out variations where the task has them); clears the controller's memory.
- ``observation() -> [obs_dim]``: what the controller feeds the policy, from the simulator's
  state as a robot would read it (sensors, joint encoders) and the controller's own memory.
- ``reference_observation() -> [obs_dim]``: the same observation as the task computes it
  (the Gymnasium env's own, or the task's rule on the simulator's full state). deploy-sim
  reports ``obs_gap = max |observation - reference|`` over every step: measured, never written.
- ``obs_tolerance`` (class attribute): the largest ``obs_gap`` that still means "the same
  observation" for this controller (rounding, or a sensor model's measured difference); a clean
  deploy-sim run with a larger gap is a MISMATCH.
- ``max_episode_steps``: the episode's time limit in control periods (deploy-sim stops there).
- ``step(action [act_dim]) -> (reward, done)``: applies an action already clipped to the
  policy's bounds for one control period (the controller keeps its targets and previous
  action), then scores it with the task's reward and termination rules.
- ``episode_stats() -> {name: float}``: the finished episode's statistics (``success``, ``laps``,
  ``collision``, ``distance`` ...), the same names the batched task reports.
- ``summarize(episodes: list[dict]) -> {name: float}``: statistics over episodes (rates, per km).
- ``summary_lines(summary, reference) -> [str]``: the task's lines of the deploy-sim report,
  ``reference`` being ``policy.json``'s checkpoint evaluation.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np


class Controller(Protocol):
    """One task's deployment controller over one ``MjModel``/``MjData`` (see the module docstring)."""

    max_episode_steps: int
    obs_tolerance: float

    @classmethod
    def from_export(cls, meta: dict[str, Any], seed: int) -> Controller: ...

    def reset(self, episode: int) -> None: ...

    def observation(self) -> np.ndarray: ...

    def reference_observation(self) -> np.ndarray: ...

    def step(self, action: np.ndarray) -> tuple[float, bool]: ...

    def episode_stats(self) -> dict[str, float]: ...

    def summarize(self, episodes: list[dict[str, float]]) -> dict[str, float]: ...

    def summary_lines(self, summary: dict[str, float], reference: dict[str, Any]) -> list[str]: ...


def controller_class(path: str) -> type[Controller]:
    """The class a ``"module:Class"`` path names; only modules under ``envs`` are loaded."""
    module, _, name = path.partition(":")
    if not module.startswith("envs.") or not name:
        raise ValueError(f"deployment.controller {path!r}: expected 'envs.<module>:<Class>'")
    return getattr(importlib.import_module(module), name)


__all__ = ["Controller", "controller_class"]
