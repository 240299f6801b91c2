"""A sweep's YAML file, read and checked before Ray starts: the fixed train options, the search space over
train options, the search, the scheduler, the metric, the budget and each trial's resources.

    base:                      # train options every trial shares (train.py's option names)
      env_id: Pendulum-v1
      algo: sac
      total_timesteps: 6000
      eval_freq: 1000
    space:                     # train options searched: one distribution each
      lr: {loguniform: [1.0e-4, 3.0e-3]}
      tau: {grid: [0.005, 0.02]}
    search: random             # random (grid entries expanded, the rest sampled), grid, or optuna (TPE)
    metric: auto               # auto: comp_eval/C_overall on the soccer tasks, eval/mean_reward with env_id
    mode: max
    scheduler: asha            # none, asha (async successive halving) or median (median stopping rule)
    grace_period: 2000         # asha / median: timesteps before a trial can be stopped
    reduction_factor: 2        # asha
    trials: 8                  # samples drawn (random, optuna); grid: times the whole grid is run
    concurrency: 2             # trials running at once
    resources: {cpu: 1, gpu: 0}
    time_budget_s: 3600        # wall-clock budget of the whole sweep (optional)
    seed: 0                    # the search's own seed

Every key is checked (an unknown key, option, distribution, search, scheduler or metric is a UsageError with one
line); every trial's options are built and checked as train.py would check them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.tasks import TASK_NAMES
from rlcore.cliutil import UsageError, read_yaml_mapping
from rlcore.metrics import EVAL_MEAN_LENGTH, EVAL_MEAN_RETURN
from scoring.eval_metrics import C_OVERALL
from workflow.options import TrainOptions, check_options, options_from_mapping

SEARCHES = ("random", "grid", "optuna")
SCHEDULERS = ("none", "asha", "median")
DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")
"""grid: every value, in turn; choice: one value drawn; uniform / loguniform: [low, high]; randint: [low, high)."""
SOCCER_METRICS = (C_OVERALL, *(f"comp_eval/{task}" for task in TASK_NAMES), "eval/S_overall")
GENERIC_METRICS = (EVAL_MEAN_RETURN, EVAL_MEAN_LENGTH)
KEYS = ("base", "space", "search", "metric", "mode", "scheduler", "grace_period", "reduction_factor", "trials",
        "concurrency", "resources", "time_budget_s", "seed")


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep file."""

    base: dict[str, Any]
    space: dict[str, tuple[str, list]]
    """option -> (distribution, its values or bounds)."""
    search: str = "random"
    metric: str = "auto"
    mode: str = "max"
    scheduler: str = "none"
    grace_period: int = 1
    reduction_factor: int = 2
    trials: int = 1
    concurrency: int = 1
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    time_budget_s: float | None = None
    seed: int = 0

    @property
    def soccer(self) -> bool:
        return self.base_options().soccer

    def base_options(self) -> TrainOptions:
        return options_from_mapping(self.base, "base").with_defaults()

    @property
    def score_key(self) -> str:
        """The logged key the sweep ranks trials by."""
        if self.metric != "auto":
            return self.metric
        return C_OVERALL if self.soccer else EVAL_MEAN_RETURN

    @property
    def max_timesteps(self) -> int:
        """The longest trial (the scheduler's horizon)."""
        longest = self.base_options().total_timesteps
        if "total_timesteps" in self.space:
            kind, values = self.space["total_timesteps"]
            longest = max(int(v) for v in values)
        return int(longest)

    def grid_size(self) -> int:
        """Trials of one pass over the grid entries (1 without any)."""
        return math.prod(len(values) for kind, values in self.space.values() if kind == "grid")

    def example_configs(self) -> list[dict[str, Any]]:
        """Configs that exercise every value of the space's entries (for checking them before Ray starts):
        each grid / choice value, each bound."""
        entries = {name: values for name, (kind, values) in self.space.items()}
        longest = max(len(v) for v in entries.values())
        return [{name: values[min(i, len(values) - 1)] for name, values in entries.items()} for i in range(longest)]


def read_spec(path: str | Path) -> SweepSpec:
    """The sweep file at `path`, checked (UsageError naming the file and the key)."""
    where = f"--config {path}"
    data = read_yaml_mapping(path, "--config")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise UsageError(f"{where}: base must be a mapping of train options to values")
    space_data = data.get("space")
    if not isinstance(space_data, dict) or not space_data:
        raise UsageError(f"{where}: the search space is empty: give space: {{option: {{grid: [...]}}, ...}}")
    space = {str(name).replace("-", "_"): _entry(name, entry, where) for name, entry in space_data.items()}
    overlap = sorted(set(space) & {str(k).replace("-", "_") for k in base})
    if overlap:
        raise UsageError(f"{where}: {overlap[0]!r} is both in base and in space")
    for reserved in ("save_dir", "resume_model", "threads"):
        if reserved in space or reserved in {str(k).replace("-", "_") for k in base}:
            raise UsageError(f"{where}: {reserved} is set by the sweep for each trial")
    spec = SweepSpec(
        base=dict(base), space=space,
        search=_choice(data, "search", SEARCHES, "random", where),
        metric=str(data.get("metric", "auto")),
        mode=_choice(data, "mode", ("max", "min"), "max", where),
        scheduler=_choice(data, "scheduler", SCHEDULERS, "none", where),
        grace_period=_integer(data, "grace_period", 1, where),
        reduction_factor=_integer(data, "reduction_factor", 2, where, minimum=2),
        trials=_integer(data, "trials", 1, where),
        concurrency=_integer(data, "concurrency", 1, where),
        resources=_resources(data.get("resources", {"cpu": 1, "gpu": 0}), where),
        time_budget_s=_budget(data.get("time_budget_s"), where),
        seed=_integer(data, "seed", 0, where, minimum=0),
    )
    _check_search(spec, where)
    _check_metric(spec, where)
    for config in spec.example_configs():  # every trial's options check as train.py checks them
        check_options(options_from_mapping({**spec.base, **config}, where).with_defaults())
    return spec


def _entry(name: Any, entry: Any, where: str) -> tuple[str, list]:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise UsageError(f"{where}: space.{name} must be one distribution, e.g. {{grid: [1, 2]}} "
                         f"({', '.join(DISTRIBUTIONS)})")
    kind, values = next(iter(entry.items()))
    if kind not in DISTRIBUTIONS:
        raise UsageError(f"{where}: space.{name}: unknown distribution {kind!r} (known: {', '.join(DISTRIBUTIONS)})")
    if not isinstance(values, list) or not values:
        raise UsageError(f"{where}: space.{name}.{kind} needs a non-empty list")
    if kind in ("uniform", "loguniform", "randint"):
        if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise UsageError(f"{where}: space.{name}.{kind} needs [low, high]")
        low, high = values
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise UsageError(f"{where}: space.{name}.{kind} needs finite low < high, got {values}")
        if kind == "loguniform" and low <= 0:
            raise UsageError(f"{where}: space.{name}.loguniform needs low > 0, got {low}")
        if kind == "randint" and not all(isinstance(v, int) for v in values):
            raise UsageError(f"{where}: space.{name}.randint needs integer bounds, got {values}")
    return kind, list(values)


def _choice(data: dict, key: str, known: tuple[str, ...], default: str, where: str) -> str:
    value = data.get(key, default)
    if value not in known:
        raise UsageError(f"{where}: unknown {key} {value!r} (known: {', '.join(known)})")
    return value


def _integer(data: dict, key: str, default: int, where: str, minimum: int = 1) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _resources(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) - {"cpu", "gpu"}:
        raise UsageError(f"{where}: resources must be {{cpu: N, gpu: F}}, got {value!r}")
    cpu, gpu = value.get("cpu", 1), value.get("gpu", 0)
    for key, amount in (("cpu", cpu), ("gpu", gpu)):
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) or amount < 0:
            raise UsageError(f"{where}: resources.{key} must be a number >= 0, got {amount!r}")
    if cpu < 1:
        raise UsageError(f"{where}: resources.cpu must be >= 1 (a trial runs on at least one core), got {cpu}")
    return {"cpu": float(cpu), "gpu": float(gpu)}


def _budget(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{where}: time_budget_s must be a number of seconds > 0, got {value!r}")
    return float(value)


def _check_search(spec: SweepSpec, where: str) -> None:
    kinds = {kind for kind, _ in spec.space.values()}
    if spec.search == "grid" and kinds != {"grid"}:
        raise UsageError(f"{where}: search grid needs every space entry to be a grid (got {', '.join(sorted(kinds))})")
    if spec.search == "optuna" and "grid" in kinds:
        raise UsageError(f"{where}: search optuna samples; use choice instead of grid")
    if spec.scheduler != "none" and spec.grace_period >= spec.max_timesteps:
        raise UsageError(f"{where}: grace_period ({spec.grace_period} timesteps) must be below the trials' "
                         f"total_timesteps ({spec.max_timesteps})")


def _check_metric(spec: SweepSpec, where: str) -> None:
    if spec.metric == "auto":
        return
    known = SOCCER_METRICS if spec.soccer else GENERIC_METRICS
    if spec.metric not in known:
        runs = "the soccer tasks" if spec.soccer else "env_id"
        raise UsageError(f"{where}: unknown metric {spec.metric!r} for {runs} (known: auto, {', '.join(known)})")
