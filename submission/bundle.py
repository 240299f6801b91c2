"""The files written next to every saved model: the SB3 zip, the statistics it was evaluated with, and a
ready submission folder. For the model kind "final" (the end of a run) or "best" (the best competition
evaluation) in a run's save dir:

    final_model.zip                     SB3 zip (rlcore.export): TD3.load / SAC.load / PPO.load
    final_model.meta.json               the facts and statistics the zip goes with (below)
    submission_final/model.zip          the same bytes as final_model.zip
    submission_final/meta.json          the same document as final_model.meta.json
    submission_final/preprocessor.py    soccer runs: the sai_rl Preprocessor, normaliser statistics baked in
    submission_final/SUBMIT.md          the sai_rl calls to benchmark and submit the folder

(`best` writes best_model_competition.zip and submission_best/; MODEL_FILES lists every kind.) The meta
document holds the algorithm, action mode and repeat, training timesteps, the observation normaliser's statistics
(RunningNormalizer.stats()), the evaluation scores, versions and the zip's sha256: a meta file is only ever
applied to the zip it describes. The zip's policy input is the network's input: on the soccer tasks the
Preprocessor's output; on a generic env with the normaliser on, observations normalised with the
statistics in meta.json (no Preprocessor there: SUBMIT.md states the formula).

Only the `torque` action mode exports: the platform applies `predict`'s output as raw torques, which is a
torque policy's [-1, 1] action mapped onto the torque bounds; other modes raise `NotExportable`.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.command import CommandOptions
from envs.factory import ACTION_MODES, make_env
from envs.tasks import TASK_NAMES
from rlcore.algos import Algorithm
from rlcore.export import export_sb3_zip
from rlcore.fileio import atomic_write
from rlcore.normalizer import check_stats
from rlcore.registry import ALGORITHM_SPECS
from rlcore.safepickle import read_bounded
from skills.residual import RESIDUAL_KEY, check_scale
from submission.preprocessor import preprocessor_source

META_FORMAT = 1
MODEL_FILES: dict[str, tuple[str, str]] = {
    "final": ("final_model.zip", "submission_final"),
    "best": ("best_model_competition.zip", "submission_best"),
    "best_legacy": ("best_model.zip", "submission_best_legacy"),
    "best_gpk": ("best_model_gpk.zip", "submission_best_gpk"),
    "best_opk": ("best_model_opk.zip", "submission_best_opk"),
    "best_ktt": ("best_model_ktt.zip", "submission_best_ktt"),
}
"""Model kind -> (zip name in the save dir, submission folder name): the end of a run, the best competition
score, the best legacy score (seed name best_model.zip), and single-task runs' per-task names."""
MAX_META_BYTES = 64 * 2**20
"""Largest meta document read (ours are a few kilobytes)."""
_PACKAGES = ("booster-soccer-rl", "torch", "numpy", "gymnasium", "sai-mujoco", "mujoco", "stable-baselines3")


class NotExportable(ValueError):
    """The model cannot become an SB3 zip (an action mode other than torque)."""


def is_soccer(metadata: Mapping[str, Any]) -> bool:
    """Whether a run's metadata (workflow/builders.py: build_soccer / build_generic) describes the soccer tasks."""
    return "tasks" in metadata


def check_run_metadata(metadata: Any, where: str) -> None:
    """ValueError unless a checkpoint's run metadata (workflow/builders.py: build_soccer / build_generic) is usable:
    soccer tasks known, an action mode, a repeat >= 1 and command-mode options that build; or a gymnasium env id."""
    if not isinstance(metadata, Mapping):
        raise ValueError(f"{where}: the run metadata must be a mapping")
    if not is_soccer(metadata):
        if "env_id" in metadata and not isinstance(metadata["env_id"], str):
            raise ValueError(f"{where}: env_id must be a string, got {metadata['env_id']!r}")
        return
    tasks = metadata["tasks"]
    if not (isinstance(tasks, list) and tasks and all(t in TASK_NAMES for t in tasks)):
        raise ValueError(f"{where}: tasks must be a list of {', '.join(TASK_NAMES)}, got {tasks!r}"[:300])
    if metadata.get("action_mode", "torque") not in ACTION_MODES:
        raise ValueError(f"{where}: unknown action mode {metadata.get('action_mode')!r}"[:300])
    repeat = metadata.get("action_repeat", 1)
    if type(repeat) is not int or repeat < 1:
        raise ValueError(f"{where}: action_repeat must be an integer >= 1, got {repeat!r}"[:300])
    if metadata.get("command") is not None:
        try:
            CommandOptions.from_dict(metadata["command"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: bad command-mode options ({exc})"[:300]) from None
    if metadata.get(RESIDUAL_KEY) is not None:
        if metadata.get("action_mode") != "command" or not CommandOptions.from_dict(metadata.get("command") or {}).walk:
            raise ValueError(f"{where}: a residual-striker run must be a command-mode run over the walk engine")
        try:
            check_scale(metadata[RESIDUAL_KEY])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}"[:300]) from None


def check_exportable(metadata: Mapping[str, Any]) -> None:
    """NotExportable unless the run's policy can be an SB3 zip (soccer: only the torque action mode)."""
    mode = metadata.get("action_mode", "torque") if is_soccer(metadata) else "torque"
    if mode != "torque":
        raise NotExportable(
            f"action mode {mode!r} does not export to an SB3 zip: the platform applies predict's output as raw "
            f"torques, so only --action-mode torque exports; export a {mode} policy as a TorchScript torque "
            "module instead: python -m submission <checkpoint.pt> --torchscript")


def real_action_bounds(env: gym.Env | gym.vector.VectorEnv) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of the action the REAL env takes: the raw torque bounds of a soccer env (whose wrapped
    action space is [-1, 1]), the action space of any other env; float32 (A,) arrays."""
    if "torque_low" in env.metadata:
        low, high = env.metadata["torque_low"], env.metadata["torque_high"]
    else:
        space = getattr(env, "single_action_space", env.action_space)
        low, high = space.low, space.high
    return np.asarray(low, np.float32), np.asarray(high, np.float32)


@functools.cache
def _spaces(task: str | None, env_id: str | None) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    if task is None and env_id not in gym.registry:
        raise ValueError(f"unknown gymnasium env id {env_id!r}")
    env = make_env(task)() if task is not None else gym.make(env_id)
    try:
        low, high = real_action_bounds(env)
        return int(np.prod(env.observation_space.shape)), tuple(low.tolist()), tuple(high.tolist())
    finally:
        env.close()


def env_spaces(*, task: str | None = None, env_id: str | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """(policy observation width, real action low, real action high) of a fresh soccer `task` env (89-dim
    observation, torque bounds) or gymnasium `env_id` env; cached per process. ValueError for an unknown id."""
    obs_dim, low, high = _spaces(task, env_id)
    return obs_dim, np.asarray(low, np.float32), np.asarray(high, np.float32)


def sidecar_path(zip_path: Path) -> Path:
    """Where the meta document of a zip is written beside it: X.zip -> X.meta.json."""
    return Path(zip_path).with_suffix(".meta.json")


def read_meta(zip_path: Path) -> dict[str, Any] | None:
    """The meta document of a zip: X.meta.json, or meta.json beside it naming it (a submission folder).

    None when there is none (e.g. a zip SB3 saved); ValueError when it exists but belongs to other bytes.
    """
    zip_path = Path(zip_path)
    for candidate in (sidecar_path(zip_path), zip_path.parent / "meta.json"):
        if not candidate.is_file():
            continue
        try:
            meta = json.loads(read_bounded(candidate, MAX_META_BYTES).decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ValueError(f"cannot read {candidate}: {exc.__class__.__name__}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{candidate} is not a model meta document")
        if candidate.name == "meta.json" and meta.get("model") != zip_path.name:
            continue
        if meta.get("model_sha256") != _sha256(zip_path.read_bytes()):
            raise ValueError(f"{candidate} describes another {zip_path.name} (sha256 differs): its normaliser "
                             "statistics would not match; re-export the model")
        return _checked_meta(meta, candidate)
    return None


def _checked_meta(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The fields of a meta document that are used (algorithm, action mode and repeat, normaliser statistics),
    checked; the statistics made plain (check_stats). ValueError naming the file and the field."""
    if not (isinstance(meta.get("algo"), str) and meta["algo"] in ALGORITHM_SPECS):
        raise ValueError(f"{path}: unknown algo {meta.get('algo')!r}"[:300])
    if meta.get("action_mode") not in (None, *ACTION_MODES):
        raise ValueError(f"{path}: unknown action mode {meta.get('action_mode')!r}"[:300])
    repeat = meta.get("action_repeat", 1)
    if type(repeat) is not int or repeat < 1:
        raise ValueError(f"{path}: action_repeat must be an integer >= 1, got {repeat!r}"[:300])
    if meta.get("normalizer") is not None:
        try:
            meta = {**meta, "normalizer": check_stats(meta["normalizer"])}
        except ValueError as exc:
            raise ValueError(f"{path}: bad normaliser statistics: {exc}") from None
    return meta


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_model(save_dir: Path, kind: str, algo: Algorithm, metadata: Mapping[str, Any], *,
                action_low: np.ndarray, action_high: np.ndarray, timesteps: int,
                scores: Mapping[str, float]) -> Path:
    """Write the model files of `kind` (module docstring) into `save_dir`; returns the zip's path.

    `action_low`/`action_high` are the real env's bounds (`real_action_bounds`); `scores` the evaluation
    the current weights and normaliser statistics obtained. Raises NotExportable for non-torque policies.
    """
    if kind not in MODEL_FILES:
        raise ValueError(f"model kind must be one of {', '.join(MODEL_FILES)}, got {kind!r}")
    check_exportable(metadata)
    zip_name, folder_name = MODEL_FILES[kind]
    save_dir, stats = Path(save_dir), algo.normalizer.stats()
    obs_dim = len(stats["mean"])
    bound = stats["clip"] if stats["enabled"] else np.inf  # the zip's input is the normalised observation
    zip_path = save_dir / zip_name
    export_sb3_zip(algo, zip_path, obs_low=np.full(obs_dim, -bound), obs_high=np.full(obs_dim, bound),
                   action_low=action_low, action_high=action_high, num_timesteps=timesteps)
    data = zip_path.read_bytes()
    meta = {
        "format": META_FORMAT, "kind": kind, "model": zip_name, "model_sha256": _sha256(data),
        "algo": algo.name, "action_mode": metadata.get("action_mode", "torque") if is_soccer(metadata) else None,
        "action_repeat": int(metadata.get("action_repeat", 1)), "timesteps": int(timesteps), "obs_dim": obs_dim,
        "action_low": np.asarray(action_low, np.float32).tolist(),
        "action_high": np.asarray(action_high, np.float32).tolist(),
        "net": {"net_arch": list(algo.cfg.net.net_arch), "activation": algo.cfg.net.activation},
        "normalizer": stats, "evaluation": {k: float(v) for k, v in scores.items()},
        "training_env": dict(metadata), "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_text(sidecar_path(zip_path), json.dumps(meta, indent=2))
    folder = save_dir / folder_name
    atomic_write(folder / "model.zip", lambda handle: handle.write(data))
    _write_text(folder / "meta.json", json.dumps({**meta, "model": "model.zip"}, indent=2))
    if is_soccer(metadata):
        _write_text(folder / "preprocessor.py", preprocessor_source(stats))
    _write_text(folder / "SUBMIT.md", submit_text(meta, soccer=is_soccer(metadata)))
    return zip_path


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def submit_text(meta: Mapping[str, Any], *, soccer: bool) -> str:
    """SUBMIT.md of a submission folder: what the files are and the sai_rl calls (a zip path needs algorithm=)."""
    algo = meta["algo"].upper()
    lines = [
        "# Submitting this model", "",
        f"`model.zip` is a Stable-Baselines3 {algo} model ({meta['timesteps']} training timesteps); `meta.json` "
        "records how it was trained and evaluated (normaliser statistics, scores, versions).", "",
    ]
    if soccer:
        lines += [
            "`preprocessor.py` turns the platform's (obs, info) into the model's 89-dim input, observation "
            "normaliser included; `predict` returns raw joint torques (the zip's action space is the torque "
            "bounds), which the platform applies unchanged.", "",
            "```python",
            "from sai_rl import SAIClient",
            "",
            'sai = SAIClient(comp_id="<competition id>")',
            f'sai.benchmark(model="model.zip", algorithm="{algo}", preprocessor_class="preprocessor.py")',
            f'sai.submit(name="<submission name>", model="model.zip", algorithm="{algo}",',
            '           preprocessor_class="preprocessor.py")',
            "```", "",
            f"`algorithm=\"{algo}\"` is required with a zip path (sai_rl loads it with `{algo}.load`). Check it "
            "offline first with the official score: `python evaluate.py --model <this folder>/model.zip`.",
        ]
        if meta["action_repeat"] != 1:
            lines += ["", f"Trained with action_repeat {meta['action_repeat']}: the platform queries the policy "
                      "at every physics step, so it will act more often than in training."]
    else:
        norm = meta["normalizer"]
        lines += [
            "```python",
            f"from stable_baselines3 import {algo}",
            "",
            f'model = {algo}.load("model.zip")',
            "action, _ = model.predict(policy_input, deterministic=True)",
            "```", "",
            ("`policy_input` is the observation normalised with `meta.json[\"normalizer\"]`: "
             "`clip((obs - mean) / sqrt(var + epsilon), -clip, clip)` in float32."
             if norm["enabled"] else "`policy_input` is the env's observation as it is."),
            "`predict` returns actions in the env's own bounds.",
        ]
    return "\n".join(lines) + "\n"
