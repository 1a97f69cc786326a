"""Typed, frozen run configuration loaded from YAML.

``configs/<task>.yaml`` -> dict -> dotted command-line overrides -> :class:`Config`.
Every field has a type, a one-line help text (``metadata["help"]``) and, where it
matters, a valid range. A wrong key, type or value raises :class:`ConfigError`
with one line naming the source (file or command line), the dotted key and what
is valid.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml

from app.algorithms import ALGORITHMS
from app.algorithms.trpo import TRPOConfig
from app.errors import ConfigError, PolicylabError, TaskError
from app.params import param
from app.typed import build
from envs import is_env_id
from envs.catalog import NATIVE_TASK_IDS
from envs.config import RandomizationConfig, TaskConfig  # noqa: F401 (the task section, owned by envs)
from envs.placement import DEVICE_CHOICES, DEVICE_NAME, resolve_placement
from policies.config import PolicyConfig  # the policy section, owned by policies

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class ValueConfig:
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layer widths of the value MLP", low=1)
    activation: Literal["tanh", "relu", "elu", "silu"] = param("tanh", "hidden activation")
    lr: float = param(1e-3, "Adam learning rate of the value function", low=0.0, low_open=True)
    epochs: int = param(10, "passes over the batch when fitting the value function", low=1)
    minibatch_size: int = param(128, "minibatch size when fitting the value function", low=1)
    max_grad_norm: float | None = param(
        None, "clip the value gradient norm (null: no clipping)", low=0.0, low_open=True
    )


@dataclass(frozen=True)
class AdvantageConfig:
    """How returns and advantages are estimated from a rollout: the runner's, shared by every algorithm."""

    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0)
    gae_lambda: float = param(0.95, "GAE lambda (0: one-step TD, 1: Monte Carlo)", low=0.0, high=1.0)
    normalize_advantages: bool = param(True, "standardize advantages over the batch")
    normalize_rewards: bool = param(True, "divide rewards by a running std of the discounted return")


# Keys that lived in the algo section before the shared ``advantage`` section existed: a saved run's
# config.yaml (or checkpoint) that still has them in ``algo`` is read with them moved.
LEGACY_ADVANTAGE_KEYS = tuple(f.name for f in dataclasses.fields(AdvantageConfig))


@dataclass(frozen=True)
class TrainConfig:
    total_steps: int = param(1_000_000, "environment steps to train for (all envs together)", low=1)
    steps_per_env: int = param(256, "rollout length per environment per iteration (batch = num_envs x this)", low=1)
    seed: int = param(0, "seed of environments, initialization and sampling", low=0)
    device: str = param(
        "auto",
        "where the run lives: auto (the backend's own: cuda:0 for gpu, else cpu), cpu, cuda or cuda:N; the gpu "
        "backend simulates on it too (see envs/placement.py)",
    )
    minutes: float | None = param(
        None,
        "wall-clock budget: end the run cleanly (final evaluation, checkpoint, report) after this many minutes, "
        "start-up included, or at total_steps, whichever comes first (null: no limit)",
        low=0.0,
        low_open=True,
    )
    torch_threads: int = param(1, "torch CPU threads while collecting (0: torch's default)", low=0)
    update_threads: int = param(
        0, "torch CPU threads for the update, while the simulator is idle (0: one per available core)", low=0
    )
    eval_every: int = param(10, "deterministic evaluation every N iterations (0: only at the end)", low=0)
    eval_episodes: int = param(5, "episodes per evaluation", low=1)
    checkpoint_every: int = param(10, "write checkpoints/latest.pt every N iterations", low=1)
    keep_every: int = param(100, "keep a periodic checkpoint every N iterations (0: never)", low=0)
    max_bad_updates: int = param(5, "stop after this many consecutive rejected (non-finite) updates", low=1)
    runs_dir: str = param("runs", "root folder of run directories")
    progress: Literal["auto", "bar", "log", "none"] = param(
        "auto", "progress display: bar on a terminal, one log line per iteration, or none"
    )
    video_every: int = param(
        0, "render a deterministic episode to videos/ and TensorBoard every N iterations (0: never)", low=0
    )
    video_width: int = param(320, "width of training videos in pixels (even)", low=16, high=4096)
    video_height: int = param(240, "height of training videos in pixels (even)", low=16, high=4096)

    def problems(self) -> list[tuple[str, str]]:
        if not DEVICE_NAME.fullmatch(self.device):
            return [("device", f"unknown device {self.device!r}; valid: {DEVICE_CHOICES}")]
        return []


@dataclass(frozen=True)
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    advantage: AdvantageConfig = field(default_factory=AdvantageConfig)
    algo: Any = field(default_factory=TRPOConfig)  # typed by the registry: ALGORITHMS[algo.name].config
    train: TrainConfig = field(default_factory=TrainConfig)


# ---------------------------------------------------------------------------
# tasks


def available_tasks(configs_dir: Path = CONFIGS_DIR) -> list[str]:
    """Names of the shipped task configs (``configs/<name>.yaml``)."""
    return sorted(p.stem for p in configs_dir.glob("*.yaml"))


def unknown_task_error(task: str, configs_dir: Path = CONFIGS_DIR) -> TaskError:
    tasks = available_tasks(configs_dir)
    close = difflib.get_close_matches(task.lower(), tasks, n=1, cutoff=0.3)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return TaskError(
        f"unknown task '{task}'.{hint} Tasks: {', '.join(tasks)}; "
        "or any Gymnasium id (Hopper-v5) or dm_control task (dmc:walker-walk)."
    )


def load_config(
    task: str,
    overrides: typing.Sequence[str] = (),
    configs_dir: Path = CONFIGS_DIR,
    algo: str | None = None,
    settings: str | None = None,
) -> Config:
    """Load ``configs/<task>.yaml`` (or defaults for a raw environment id) and apply overrides.

    ``task`` is a config name (``hopper``), a Gymnasium id (``Hopper-v5``) or
    ``dmc:domain-task``. ``overrides`` are ``dotted.key=value`` strings. ``algo`` (or an
    ``algo.name=...`` override) picks another algorithm than the task file's: its settings for
    this task come from ``configs/<algo>/<task>.yaml`` where that file exists (tuned), else
    from the algorithm's defaults; the pair file may also set any other section.

    Settings per backend: a file's top-level ``cpu:`` and ``gpu:`` sections hold the settings used
    when the run's backend resolves to that one (``gym`` runs take ``cpu``'s). The layers, each over
    the one before: the task file, its section for the backend, then (another algorithm) the pair
    file and its section for the backend, then the command line. The backend is resolved first,
    from ``task.backend`` and ``train.device`` (:mod:`envs.placement`), and the config records it.
    """
    overrides = list(overrides)
    for item in [o for o in overrides if o.partition("=")[0].strip() == "algo.name"]:
        overrides.remove(item)
        algo = yaml.safe_load(item.partition("=")[2]) if item.partition("=")[2].strip() else ""
    path = configs_dir / f"{task}.yaml"
    if TASK_NAME.fullmatch(task) and path.is_file():
        data = read_yaml(path)
        source = str(path)
    elif is_env_id(task):
        data = {"task": {"id": task}}
        source = f"task {task}"
    else:
        raise unknown_task_error(task, configs_dir)
    data, profiles = split_profiles(data, source)
    task_section = data.setdefault("task", {})
    if isinstance(task_section, dict):
        task_section.setdefault("name", task.replace(":", "-").replace("/", "-"))
    backend = placement_backend(data, overrides, source)
    if settings is not None and settings not in PROFILES:
        raise ConfigError(f"settings: unknown backend settings {settings!r}; valid: {', '.join(PROFILES)}")
    profile = settings or ("gpu" if backend == "gpu" else "cpu")
    if profile in profiles:
        data = overlay(data, profiles[profile])
        source = f"{source} ({profile} settings)"
    base_algo = data.get("algo", {}).get("name", "trpo") if isinstance(data.get("algo"), dict) else None
    if algo is not None and algo != base_algo:
        if not isinstance(algo, str) or algo not in ALGORITHMS:
            raise ConfigError(f"algo.name: unknown algorithm {algo!r}; valid: {', '.join(ALGORITHMS)}")
        data["algo"] = {"name": algo}
        pair = configs_dir / algo / f"{task}.yaml"
        if pair.is_file():
            pair_data, pair_profiles = split_profiles(read_yaml(pair), str(pair))
            data = overlay(overlay(data, pair_data), pair_profiles.get(profile, {}))
            source = f"{source} + {pair}" + (f" ({profile} settings)" if profile in pair_profiles else "")
    resolved = {"task": {"backend": backend}} if backend is not None else {}  # the config records the backend
    cfg = config_from_dict(merge_sections(data, resolved), source)  # errors here are the files'
    if not overrides:
        return cfg
    return config_from_dict(merge_sections(apply_overrides(data, overrides), resolved), f"command line (over {source})")


# Top-level sections of a task or pair file that hold one backend's settings.
PROFILES = ("cpu", "gpu")
# Keys that decide the backend, so no backend's settings may set them.
PLACEMENT_KEYS = (("task", "backend"), ("task", "id"), ("train", "device"))


def split_profiles(data: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A file's settings for every backend, and its ``cpu:`` / ``gpu:`` sections (each a mapping of sections)."""
    common = {key: value for key, value in data.items() if key not in PROFILES}
    profiles: dict[str, dict[str, Any]] = {}
    for name in PROFILES:
        if name not in data:
            continue
        profile = data[name] if data[name] is not None else {}
        if not isinstance(profile, dict):
            raise ConfigError(
                f"{source}: {name}: must be a mapping of sections (task, policy, value, advantage, algo, train): "
                f"the settings used when the backend resolves to {name}"
            )
        for section, key in PLACEMENT_KEYS:
            if isinstance(profile.get(section), dict) and key in profile[section]:
                raise ConfigError(
                    f"{source}: {name}.{section}.{key}: the backend's settings cannot set what picks the backend; "
                    f"set {section}.{key} at the top of the file"
                )
        profiles[name] = profile
    return common, profiles


def overlay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in (:func:`merge_sections`); an ``algo`` section naming another
    algorithm than ``base``'s replaces base's algo section instead of merging into it."""
    new_algo, old_algo = over.get("algo"), base.get("algo")
    named = isinstance(new_algo, dict) and "name" in new_algo and isinstance(old_algo, dict)
    if named and new_algo["name"] != old_algo.get("name", "trpo"):
        base = {**base, "algo": {}}
    return merge_sections(base, over)


def placement_backend(data: dict[str, Any], overrides: typing.Sequence[str], source: str) -> str | None:
    """The backend a run of ``data`` with ``overrides`` resolves to (None where a key is malformed: typing says why).

    Only ``task.backend``, ``task.id`` and ``train.device`` take part; a device this machine lacks is a
    ConfigError naming where it was asked for.
    """
    keys = {".".join(k) for k in PLACEMENT_KEYS}
    picked = [o for o in overrides if o.partition("=")[0].strip() in keys]
    try:
        peek = apply_overrides(data, picked)
    except ConfigError:
        return None
    task, train = peek.get("task", {}), peek.get("train", {})
    if not isinstance(task, dict) or not isinstance(train, dict):
        return None
    backend, task_id, device = task.get("backend", "gym"), task.get("id", ""), train.get("device", "auto")
    valid_backend = backend in get_args(get_type_hints(TaskConfig)["backend"])
    if not (valid_backend and isinstance(task_id, str) and isinstance(device, str) and DEVICE_NAME.fullmatch(device)):
        return None
    try:
        return resolve_placement(backend, task_id in NATIVE_TASK_IDS, device).backend
    except PolicylabError as exc:
        where = "command line" if any(o.startswith("train.device") for o in picked) else source
        raise ConfigError(f"{where}: {exc}") from None


def tuned_algorithms(task: str, configs_dir: Path = CONFIGS_DIR) -> list[str]:
    """The algorithms with settings for a shipped task here: its own (this machine's backend's), then each
    configs/<algo>/<task>.yaml."""
    own = load_config(task, configs_dir=configs_dir).algo.name
    return [own] + [name for name in ALGORITHMS if name != own and (configs_dir / name / f"{task}.yaml").is_file()]


def merge_sections(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys set section by section (nested mappings merged, the rest replaced)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_sections(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; malformed YAML is a ConfigError naming the file and line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (task, policy, value, algo, train)")
    return data


def apply_overrides(data: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` override set (value parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"command line: override '{item}' must look like section.key=value (e.g. algo.max_kl=0.02)"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"command line: '{'.'.join(parts[: depth + 1])}' is a value, not a section, in override '{item}'"
                )
            node = child
        node[parts[-1]] = value
    return data


# ---------------------------------------------------------------------------
# typing a dict into the dataclasses


def config_from_dict(data: dict[str, Any], source: str, saved: bool = False) -> Config:
    """Build a :class:`Config` from a plain dict; ``source`` names where it came from in errors.

    ``saved``: the config of an existing run (checkpoint), which may predate the ``advantage``
    section; its ``algo.gamma`` etc. are read as ``advantage.*``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping")
    if saved:
        data = _move_legacy_advantage_keys(data)
    algo = data.get("algo", {})
    if not isinstance(algo, dict):
        raise ConfigError(f"{source}: algo: must be a mapping of algorithm settings")
    name = algo.get("name", "trpo")
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ConfigError(f"{source}: algo.name: unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}")
    cfg = build(Config, data, "", source, {"algo": ALGORITHMS[name].config}, key_hint=_moved_key)
    _check_task_name(cfg.task.name, source)
    return cfg


def _moved_key(prefix: str, key: str) -> str | None:
    """Where an unknown key went: gamma and friends left the algo section for the shared advantage section."""
    if prefix == "algo." and key in LEGACY_ADVANTAGE_KEYS:
        return f"it is shared by every algorithm now: advantage.{key}"
    return None


TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _check_task_name(name: str, source: str) -> None:
    """task.name becomes a directory of the run's path: one plain path component, nothing else."""
    if not TASK_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{source}: task.name: must be a plain name of letters, digits, '_', '-', '.' or '+' "
            f"(it names the run's folder under train.runs_dir), got {name!r}"
        )


def _move_legacy_advantage_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A config written before the ``advantage`` section (gamma etc. in ``algo``) reads as today's."""
    algo = data.get("algo")
    if not isinstance(algo, dict) or not any(k in algo for k in LEGACY_ADVANTAGE_KEYS):
        return data
    data = copy.deepcopy(data)
    shared = data.setdefault("advantage", {})
    if isinstance(shared, dict):
        for key in LEGACY_ADVANTAGE_KEYS:
            if key in data["algo"]:
                shared.setdefault(key, data["algo"].pop(key))
    return data


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain YAML-friendly dict (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def save_config(cfg: Config, path: Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def field_help(
    cls: type = Config, prefix: str = "", algorithms: typing.Sequence[str] | None = None
) -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every leaf field, for documentation.

    The ``algo`` section is listed once per algorithm in ``algorithms`` (default: all registered),
    each key tagged with its algorithm: ``algo.clip [ppo]``.
    """
    rows: list[tuple[str, Any, str]] = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if cls is Config and f.name == "algo":
            for name in algorithms or list(ALGORITHMS):
                rows += [(f"{key} [{name}]", d, h) for key, d, h in field_help(ALGORITHMS[name].config, "algo.")]
        elif dataclasses.is_dataclass(hints[f.name]):
            rows += field_help(hints[f.name], f"{prefix}{f.name}.")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((f"{prefix}{f.name}", default, f.metadata.get("help", "")))
    return rows
