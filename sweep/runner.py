"""A sweep on Ray Tune: each trial is one `workflow.train(options)` inside a Ray worker, reporting every
evaluation to Tune; the scheduler stops bad trials on those reports.

Every trial keeps its own save dir, `<sweep dir>/trials/<trial id>/` (checkpoints, best models, metrics), so a
stopped, failed or interrupted sweep leaves each trial's files as a train.py run leaves them; a resumed sweep
(Tune's own state in `<sweep dir>/tune/`) continues an unfinished trial from its checkpoint.pt. Ray runs in this
process with the machine's CPUs by default, or joins a cluster (`address`).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlcore.cliutil import UsageError
from sweep.spec import SweepSpec
from workflow.options import options_from_mapping

SCORE = "score"
"""The key every trial reports its ranking score under (the spec's metric, as logged by the run)."""
TIMESTEP = "timestep"
TRAIN_FN = "workflow.training:train"
"""What a trial calls: `train(options, on_evaluation=...)`, as 'module:function' (tests give a stand-in)."""
TUNE_DIR = "tune"
TRIALS_DIR = "trials"
CONNECT_TIMEOUT_S = 5.0
LOCAL_OBJECT_STORE = 256 * 2**20
"""Bytes of Ray's object store when it runs in this process: trials pass configs and scores, not data, and a
small store fits the small /dev/shm of containers."""


def check_address(address: str) -> None:
    """UsageError unless `address` (host:port, or ray://host:port) accepts a connection within a short timeout."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address must be HOST:PORT (or ray://HOST:PORT), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(f"--address {address}: cannot reach it within {CONNECT_TIMEOUT_S:.0f} s "
                         f"({exc.strerror or exc})") from None


def start_ray(address: str | None, spec: SweepSpec) -> None:
    """Start Ray in this process (the machine's CPUs) or join the cluster at `address`; UsageError when one trial
    needs more than the machine (or the cluster) has."""
    import ray

    if address is not None:
        check_address(address)
    else:  # before Ray starts: this machine's own counts
        import torch

        _check_resources(spec, {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())},
                         "this machine")
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, object_store_memory=LOCAL_OBJECT_STORE)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot start Ray{' at ' + address if address else ''}: {str(exc).splitlines()[0]}") \
            from None
    try:
        _check_resources(spec, ray.cluster_resources(), "the cluster" if address else "this machine")
    except UsageError:
        ray.shutdown()
        raise


def _check_resources(spec: SweepSpec, have: dict[str, float], where: str) -> None:
    """UsageError when one trial asks for more CPUs or GPUs than `have` holds."""
    for key, ray_key in (("cpu", "CPU"), ("gpu", "GPU")):
        if spec.resources[key] > have.get(ray_key, 0.0):
            raise UsageError(f"resources.{key} {spec.resources[key]:g} per trial: {where} has "
                             f"{have.get(ray_key, 0.0):g}")


def _search_space(spec: SweepSpec) -> dict[str, Any]:
    from ray import tune

    makers: dict[str, Callable[[list], Any]] = {
        "grid": tune.grid_search, "choice": tune.choice,
        "uniform": lambda v: tune.uniform(*v), "loguniform": lambda v: tune.loguniform(*v),
        "randint": lambda v: tune.randint(*v),
    }
    return {name: makers[kind](values) for name, (kind, values) in spec.space.items()}


def _search_alg(spec: SweepSpec):
    """Optuna's TPE, or Tune's own grid / random variants (seeded; its concurrency limit is its own)."""
    if spec.search == "optuna":
        from optuna.samplers import TPESampler
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(OptunaSearch(sampler=TPESampler(seed=spec.seed)), max_concurrent=spec.concurrency)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=spec.seed, max_concurrent=spec.concurrency)


def _scheduler(spec: SweepSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    if spec.scheduler == "asha":
        return ASHAScheduler(time_attr=TIMESTEP, max_t=spec.max_timesteps, grace_period=spec.grace_period,
                             reduction_factor=spec.reduction_factor)
    if spec.scheduler == "median":
        return MedianStoppingRule(time_attr=TIMESTEP, grace_period=spec.grace_period, min_samples_required=2)
    return FIFOScheduler()


def run_trial(config: dict[str, Any], *, base: dict[str, Any], sweep_dir: str, score_key: str, threads: int,
              train_fn: str = TRAIN_FN) -> None:
    """One trial (inside a Ray worker): the base options with the trial's values, in the trial's save dir (from its
    checkpoint.pt when a resumed sweep restarts it); each evaluation is reported to Tune."""
    from ray import tune

    trial = tune.get_context().get_trial_id()
    save_dir = Path(sweep_dir) / TRIALS_DIR / trial
    values = {**base, **config, "save_dir": str(save_dir), "threads": threads}
    if (save_dir / "checkpoint.pt").is_file():
        values["resume_model"] = str(save_dir / "checkpoint.pt")
    options = options_from_mapping(values, f"trial {trial}")
    module, _, name = train_fn.partition(":")
    train = getattr(importlib.import_module(module), name)

    def report(timestep: int, scores: dict[str, float]) -> None:
        value = scores.get(score_key)
        tune.report({SCORE: float(value) if value is not None else math.nan, TIMESTEP: int(timestep)})

    train(options, on_evaluation=report)


def run_sweep(spec: SweepSpec, sweep_dir: Path, *, resume: bool = False, train_fn: str = TRAIN_FN):
    """Run (or resume) the sweep with Ray already started; (Tune's ResultGrid, whether Ctrl-C stopped it)."""
    from ray import tune

    sweep_dir = Path(sweep_dir).resolve()
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=spec.base, sweep_dir=str(sweep_dir), score_key=spec.score_key,
                             threads=max(1, int(spec.resources["cpu"])), train_fn=train_fn),
        {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]})
    if resume:
        if not tune.Tuner.can_restore(str(sweep_dir / TUNE_DIR)):
            raise UsageError(f"--resume: no sweep to resume in {sweep_dir}")
        tuner = tune.Tuner.restore(str(sweep_dir / TUNE_DIR), trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
    else:
        trials = spec.trials
        tuner = tune.Tuner(
            trainable, param_space=_search_space(spec),
            tune_config=tune.TuneConfig(metric=SCORE, mode=spec.mode, search_alg=_search_alg(spec),
                                        scheduler=_scheduler(spec), num_samples=trials,
                                        time_budget_s=spec.time_budget_s,
                                        trial_name_creator=_trial_id, trial_dirname_creator=_trial_id),
            run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(sweep_dir), verbose=0,
                                      callbacks=[_progress(spec)],
                                      failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)))
    with _interrupt_gracefully() as interrupted:
        grid = tuner.fit()
    return grid, bool(interrupted)


@contextlib.contextmanager
def _interrupt_gracefully():
    """While active, SIGINT (Ctrl-C) asks Tune to stop as its own SIGUSR1 does (it saves the sweep's state and
    returns what ran); yields a list that holds True once that happened. Tune's own SIGINT handler is off
    (TUNE_DISABLE_SIGINT_HANDLER) so the sweep knows it was interrupted."""
    interrupted: list[bool] = []
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"

    def on_sigint(signum, frame) -> None:
        if interrupted:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        interrupted.append(True)
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env


def _progress(spec: SweepSpec):
    """A Tune callback printing one line per trial report, end and failure."""
    from ray.tune import Callback

    started = time.perf_counter()

    def line(trial, text: str) -> None:
        values = ", ".join(f"{name}={_short(trial.config.get(name))}" for name in spec.space)
        print(f"[{time.perf_counter() - started:7.1f}s] trial {trial.trial_id} ({values}): {text}", flush=True)

    class Progress(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            line(trial, f"timestep {result.get(TIMESTEP)}, {spec.score_key} {result.get(SCORE, math.nan):+.3f}")

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            line(trial, "ended")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            line(trial, "failed")

    return Progress()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trial_id(trial) -> str:
    return trial.trial_id
