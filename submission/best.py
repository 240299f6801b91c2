"""Keep the best models of a soccer training run, each with its statistics and submission folder.

`write_run_model` writes one model kind in the format the run's action mode exports to: an SB3 zip
(submission/bundle.py) for torque policies, the TorchScript torque module (submission/torchscript.py) for
pd and command policies, which an SB3 zip cannot express.

After every evaluation, `BestModels.update(scores, timestep)` compares the scores with the best so far and
writes (submission/bundle.write_model, so every zip is paired with the normaliser statistics it was just
evaluated with, and a submission folder):
  * best_model_competition.zip + submission_best/   when comp_eval/C_overall improves (unless legacy-only)
  * best_model.zip + submission_best_legacy/         when eval/S_overall improves (when legacy scores are on)
  * single-task runs: best_model_{gpk,opk,ktt}.zip + submission_best_<task>/ with the primary score (C_overall,
    or S_overall in a legacy-only run)
  * beside each, <name>.checkpoint.pt: its weights as a checkpoint (evaluate.py --model scores it on the official
    env in any action mode; a TorchScript module is not read back)
It returns `eval/best_S_overall` and `eval_comp/best_comp_total_sum`: the best INCLUDING this evaluation (the
seed logged the best before it, -inf at the first evaluation). pd and command runs write `.pt` TorchScript
modules under the same names instead of zips. The best scores, their timesteps and files are part of every
checkpoint (state_dict / load_state_dict, through the runner's tracker), so a resumed run replaces a best model
only with a better one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.tasks import get_task
from rlcore.algos import Algorithm
from rlcore.checkpoint import save_checkpoint
from scoring.eval_metrics import C_OVERALL, S_OVERALL
from submission.bundle import MODEL_FILES, NotExportable, check_exportable, write_model
from submission.torchscript import write_torchscript

BEST_LOG_KEYS = {C_OVERALL: "eval_comp/best_comp_total_sum", S_OVERALL: "eval/best_S_overall"}
"""Score -> the key logging its best so far."""


def write_run_model(save_dir: Path, kind: str, algo: Algorithm, metadata: dict[str, Any], *,
                    action_low: np.ndarray, action_high: np.ndarray, timesteps: int,
                    scores: dict[str, float]) -> Path:
    """Write model kind `kind` of a run as an SB3 zip when its policy exports to one, else (soccer pd and
    command modes) as a TorchScript torque module; returns the model file's path."""
    try:
        check_exportable(metadata)
    except NotExportable:
        return write_torchscript(save_dir, kind, algo.policy, metadata, algo=algo.name, action_low=action_low,
                                 action_high=action_high, timesteps=timesteps, scores=scores)
    return write_model(save_dir, kind, algo, metadata, action_low=action_low, action_high=action_high,
                       timesteps=timesteps, scores=scores)


def best_checkpoint_path(save_dir: Path, kind: str) -> Path:
    """The checkpoint beside a best model: best_model_competition.zip -> best_model_competition.checkpoint.pt."""
    return Path(save_dir) / f"{Path(MODEL_FILES[kind][0]).stem}.checkpoint.pt"


@dataclass
class BestModels:
    """The best scores of a run so far and the model files that go with them."""

    save_dir: Path
    algo: Algorithm
    metadata: dict[str, Any]
    action_low: np.ndarray
    action_high: np.ndarray
    tasks: list[str]
    competition: bool = True
    """Competition scores are evaluated (False: --legacy-only-eval)."""
    legacy: bool = True
    """Legacy scores are evaluated (False: --competition-only-eval)."""
    best: dict[str, float] = field(default_factory=dict)
    """Score key -> best value so far."""
    best_at: dict[str, int] = field(default_factory=dict)
    """Score key -> the timestep of that value."""
    paths: dict[str, list[Path]] = field(default_factory=dict)
    """Score key -> the model files holding that model."""
    spaces: tuple[tuple[int, ...], np.ndarray, np.ndarray] | None = None
    """(observation shape, action low, action high) of the policy's own env (the vector env's single spaces):
    when given, every best model also gets a checkpoint (best_checkpoint_path), which evaluate.py --model scores
    in any action mode."""

    @property
    def primary(self) -> str:
        """The score the per-task files follow: the official one unless only legacy scores are evaluated."""
        return C_OVERALL if self.competition else S_OVERALL

    def kinds(self, score: str) -> list[str]:
        """The MODEL_FILES kinds written when `score` improves."""
        kinds = ["best"] if score == C_OVERALL else ["best_legacy"]
        if score == self.primary and len(self.tasks) == 1:
            kinds.append(f"best_{get_task(self.tasks[0]).suffix}")
        return kinds

    def update(self, scores: dict[str, float], timestep: int) -> tuple[dict[str, float], list[str]]:
        """Write the files of every improved score; (best-so-far keys to log, messages to print)."""
        logged, messages = {}, []
        for score, enabled in ((C_OVERALL, self.competition), (S_OVERALL, self.legacy)):
            if not enabled:
                continue
            value = scores[score]
            if value > self.best.get(score, -np.inf):
                self.best[score], self.best_at[score] = value, timestep
                self.paths[score] = [self._write(kind, timestep, scores) for kind in self.kinds(score)]
                messages.append(f"[eval] new best {score}={value:.3f} at {timestep}: "
                                + ", ".join(str(p) for p in self.paths[score]))
            logged[BEST_LOG_KEYS[score]] = self.best[score]
        return logged, messages

    def state_dict(self) -> dict:
        """The best scores, their timesteps and files (plain types: part of the run's checkpoint)."""
        return {"best": dict(self.best), "best_at": dict(self.best_at),
                "paths": {score: [str(path) for path in paths] for score, paths in self.paths.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint's state_dict(), so a resumed run replaces a best model only with a better one;
        ValueError unless it has that shape (the checkpoint may come from someone else)."""
        if not (isinstance(state, dict) and set(state) == {"best", "best_at", "paths"}
                and all(isinstance(state[key], dict) and set(state[key]) <= set(BEST_LOG_KEYS) for key in state)):
            raise ValueError("the best-model state must map the tracked scores to their best, timestep and files")
        best, best_at, paths = state["best"], state["best_at"], state["paths"]
        if not (set(best) == set(best_at) == set(paths)
                and all(type(v) in (int, float) and math.isfinite(v) for v in best.values())
                and all(type(v) is int and v >= 0 for v in best_at.values())
                and all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in paths.values())):
            raise ValueError("the best-model state holds a non-finite score, a bad timestep or a bad file list")
        self.best = {score: float(value) for score, value in best.items()}
        self.best_at = dict(best_at)
        self.paths = {score: [Path(p) for p in files] for score, files in paths.items()}

    def _write(self, kind: str, timestep: int, scores: dict[str, float]) -> Path:
        model = write_run_model(self.save_dir, kind, self.algo, self.metadata, action_low=self.action_low,
                                action_high=self.action_high, timesteps=timestep, scores=scores)
        if self.spaces is not None:  # the weights as a checkpoint: evaluate.py --model scores them
            obs_shape, low, high = self.spaces
            save_checkpoint(best_checkpoint_path(self.save_dir, kind), algo_name=self.algo.name, config=self.algo.cfg,
                            algo_state=self.algo.state_dict(), obs_shape=obs_shape, action_low=low, action_high=high,
                            runner_state={"timesteps": timestep}, metadata=self.metadata)
        return model

    def summary(self) -> list[str]:
        """One line per tracked score: its best value, when, and the files holding that model."""
        return [f"best {score}={value:.3f} at timestep {self.best_at[score]}: "
                + ", ".join(str(path) for path in self.paths[score]) for score, value in self.best.items()]
