"""`train(options) -> TrainResult`: one whole training run, the programmatic entry point of train.py and of
sweeps.

It checks every option and file before anything is built (UsageError, one line), builds the envs, the algorithm
and the runner in the locked save dir, trains, and writes the final model. A SIGINT / SIGTERM stops the run at
a safe point with checkpoint.pt written: `rlcore.runner.Interrupted` propagates to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bc.prefill import PREFILL_METRIC, prefill_replay
from envs.hub import configure_hf
from rlcore import metrics
from rlcore.cliutil import UsageError, resolve_device
from rlcore.logger import RunLogger
from rlcore.registry import algorithm_spec
from rlcore.runner import Runner, check_box_spaces
from rlcore.safepickle import reason
from scoring.curves import read_metrics
from submission import MODEL_FILES, real_action_bounds
from submission.best import BestModels, write_run_model
from workflow.builders import (
    CURVE_FILE,
    RunEnv,
    algo_config,
    build_run_env,
    check_speed_options,
    prepare_save_dir,
    seed_everything,
    track_evaluations,
)
from workflow.options import TrainOptions, check_options
from workflow.start import (
    Start,
    apply_start,
    check_start,
    read_start,
    run_config,
    start_config,
    uses_prefill,
    warm_start_recipe,
)

CHECKPOINT_FILE = "checkpoint.pt"
EvaluationHook = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainResult:
    """What a finished run gives back."""

    save_dir: Path
    timesteps: int
    scores: dict[str, float]
    """The final evaluation's scores (metric key -> value)."""
    final_model: Path
    """final_model.zip (torque mode) or final_model.pt (TorchScript, the other modes)."""
    checkpoint: Path
    best: list[str] = field(default_factory=list)
    """One line per kept best model (its score, timestep and path)."""

    def summary(self) -> list[str]:
        """The run's closing lines: scores, files, how to resume."""
        lines = ["final evaluation: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.headline(self.scores).items())]
        folder = MODEL_FILES["final"][1] + ("" if self.final_model.suffix == ".zip" else "_torchscript")
        lines.append(f"final model: {self.final_model} (submission folder: {self.save_dir / folder})")
        lines += self.best
        lines.append(f"resume with: --resume-model {self.checkpoint}")
        if (self.save_dir / CURVE_FILE).is_file():
            lines.append(f"learning curve: {self.save_dir / CURVE_FILE}")
        lines.append(f"logs: {self.save_dir / 'metrics.jsonl'}; tensorboard --logdir {self.save_dir}")
        return lines


def train(options: TrainOptions, on_evaluation: EvaluationHook | None = None) -> TrainResult:
    """Run one training run (module docstring); options left None take the workflow's defaults.
    `on_evaluation(timestep, scores)` sees every evaluation, the final one included (a sweep reports them)."""
    options = options.with_defaults()
    check_options(options)
    configure_hf(options.hf_token, options.hf_home)
    device = resolve_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    start = read_start(options)
    cfg = warm_start_recipe(options, algo_config(options, start_config(options, start)), resuming=start.resuming)
    check_speed_options(cfg, device)
    schedule = run_config(options, start)
    run_env = build_run_env(options)
    try:
        obs_dim, low, high = check_box_spaces(run_env.env)
        real_low, real_high = real_action_bounds(run_env.env)
        spaces = (obs_dim, low, high, real_low, real_high)
        start = check_start(options, start, cfg, run_env.metadata, spaces)
        save_dir, lock = prepare_save_dir(options.save_dir)
    except (ValueError, UsageError) as exc:
        run_env.env.close()
        raise UsageError(f"{run_env.description}: {exc}" if not isinstance(exc, UsageError) else str(exc)) from None
    try:
        return _run(options, run_env, cfg, schedule, device, start, save_dir, spaces, on_evaluation)
    finally:
        run_env.env.close()
        lock.release()


def _run(options: TrainOptions, run_env: RunEnv, cfg, schedule, device, start: Start, save_dir: Path,
         spaces, on_evaluation: EvaluationHook | None) -> TrainResult:
    """Build the algorithm and the runner in the locked save dir, train, write the final model."""
    obs_dim, low, high, real_low, real_high = spaces
    seed_everything(options.seed)
    spec = algorithm_spec(options.algo)
    try:
        algo = spec.build(obs_dim, low, high, cfg, device)
    except RuntimeError as exc:  # a network too large for the device's memory
        raise UsageError(f"cannot build the {options.algo} networks {cfg.net.net_arch}: {reason(exc)}") from None
    apply_start(options, start, algo)
    print(f"training {options.algo.upper()} on {run_env.description} for {options.total_timesteps} timesteps on "
          f"{device}; saving to {save_dir}")
    evaluate, best = run_env.evaluate, None
    if options.soccer:
        env, metadata = run_env.env, run_env.metadata
        space = env.single_action_space
        best = BestModels(save_dir, algo, metadata, real_low, real_high, tasks=metadata["tasks"],
                          competition=not options.legacy_only_eval, legacy=not options.competition_only_eval,
                          spaces=(env.single_observation_space.shape, space.low, space.high))
        resumed_at = start.resume["runner"].get("timesteps", 0) if start.resume is not None else -1
        history = [row for row in read_metrics(save_dir / "metrics.jsonl")
                   if isinstance(row, dict) and isinstance(row.get("timestep"), int) and row["timestep"] <= resumed_at]
        evaluate = track_evaluations(evaluate, save_dir, best, history)
    if on_evaluation is not None:
        evaluate = _reporting(evaluate, on_evaluation)
    try:
        runner = Runner(algo, run_env.env, schedule, save_dir=save_dir, evaluate=evaluate,
                        logger=RunLogger(save_dir), metadata=run_env.metadata, resume=start.resume, tracker=best)
    except ValueError as exc:  # a saved replay buffer or best-model state that does not fit
        raise UsageError(f"--resume-model: {exc}") from None
    except RuntimeError as exc:  # a buffer too large for the device's memory
        raise UsageError(f"cannot allocate the {'rollout' if spec.on_policy else 'replay'} buffer: {reason(exc)}; "
                         "lower --buffer-size / --n-steps") from None
    if uses_prefill(options):
        try:
            report = prefill_replay(runner.replay, options.bc_replay_dataset, seed=options.seed,
                                    action_mode=options.action_mode if options.soccer else None,
                                    reward_profile=options.reward_profile if options.soccer else None)
        except ValueError as exc:
            raise UsageError(f"--bc-replay-dataset: {exc}") from None
        runner.logger.message(report.message())
        runner.logger.record({PREFILL_METRIC: report.inserted}, runner.timesteps)
    final = runner.train()
    model_path = write_run_model(save_dir, "final", algo, run_env.metadata, action_low=real_low,
                                 action_high=real_high, timesteps=runner.timesteps, scores=final)
    return TrainResult(save_dir, runner.timesteps, final, model_path, save_dir / CHECKPOINT_FILE,
                       best.summary() if best is not None else [])


def _reporting(evaluate, on_evaluation: EvaluationHook):
    """`evaluate` that also hands every evaluation's scores to `on_evaluation`."""

    def evaluate_and_report(policy, timestep: int) -> dict[str, float]:
        scores = evaluate(policy, timestep)
        on_evaluation(timestep, dict(scores))
        return scores

    return evaluate_and_report
