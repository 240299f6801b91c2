"""The TorchScript torque module against the in-training path, in a fresh process that has only torch and numpy.

The parent runs whole (short) episodes of every task through the real wrapped env with the policy the
harness uses, recording at every physics step the 89-dim observation and the torques the action wrapper
sent to the raw env. A child `python -I` process, with this project's packages blocked from import, loads
the saved modules with torch.jit.load and computes torques from the observations alone (episode starts
detected by the module); the parent compares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import submission.__main__ as export_cli
from envs.command import CommandAction, CommandOptions
from envs.factory import make_env
from envs.macros import TriggerConfig
from envs.preprocess import OBS_DIM, OBS_SLICES, preprocess_step
from envs.tasks import TASK_NAMES, get_task
from envs.wrappers import PDAction, TorqueAction
from rlcore.algos import build_algorithm
from rlcore.checkpoint import save_checkpoint
from rlcore.cliutil import run_cli
from rlcore.config import ObsNormConfig, SACConfig, TD3Config
from submission.preprocessor import load_like_platform
from submission.torchscript import (
    command_options,
    save_module,
    torchscript_preprocessor_source,
    torque_module,
)
from tests.controller_files import config_dict, write_controller
from tests.mocap_files import clip_arrays, write_clip
from tests.platform_client import platform_env

MAX_STEPS = 150
TOLERANCE = 1e-4
ACTION_WRAPPERS = (TorqueAction, PDAction, CommandAction)

CHILD = r"""
import importlib.abc, json, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"rlcore", "envs", "submission", "scoring", "bc", "gymnasium", "sai_mujoco",
                                  "mujoco", "yaml"}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocked())
import numpy as np
import torch
torch.set_num_threads(1)
cases = json.load(open("cases.json"))
out = {}
for name, case in cases.items():
    data = np.load(name + ".npz")
    module = torch.jit.load(name + ".pt")
    out[name] = np.stack([module(torch.from_numpy(row)).numpy() for row in data["obs"]])
    module.reset()
    out[name + "_again"] = np.stack([module(torch.from_numpy(row)).numpy() for row in data["obs"][:50]])
    if case["batched"]:
        starts = list(case["starts"]) + [len(data["obs"])]
        streams = [data["obs"][a:b] for a, b in zip(starts[:-1], starts[1:])]
        length = max(len(s) for s in streams)
        module.reset()
        rows = [module(torch.from_numpy(np.stack([s[min(t, len(s) - 1)] for s in streams]))).numpy()
                for t in range(length)]
        out[name + "_batched"] = np.stack(rows)
    if case["platform"]:
        out[name + "_platform"] = np.stack([torch.jit.load(name + "_platform.pt")(torch.from_numpy(row)).numpy()
                                            for row in data["obs"]])
np.savez("torques.npz", **out)
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in {"rlcore", "envs", "submission"}))
"""


class Recorder(gym.Wrapper):
    """Sits under the action wrapper: records the 89-dim observation before every physics step and the torques
    the action wrapper sent for it."""

    def __init__(self, env: gym.Env, one_hot: np.ndarray) -> None:
        super().__init__(env)
        self.one_hot = one_hot
        self.obs: list[np.ndarray] = []
        self.torques: list[np.ndarray] = []
        self._last = np.zeros(OBS_DIM, np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._last = preprocess_step(obs, info, self.one_hot)
        return obs, info

    def step(self, action):
        self.obs.append(self._last)
        self.torques.append(np.asarray(action, np.float32).copy())
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last = preprocess_step(obs, info, self.one_hot)
        return obs, reward, terminated, truncated, info


def attach_recorder(env: gym.Env, task: str) -> Recorder:
    layer = env
    while not isinstance(layer, ACTION_WRAPPERS):
        layer = layer.env
    layer.env = Recorder(layer.env, get_task(task).one_hot)
    return layer.env


def make_algo(name: str, act_dim: int, *, sentinel: bool = False):
    """Random weights and a normaliser with non-trivial statistics (clipping active on some dims)."""
    torch.manual_seed(1)
    cfg = (TD3Config if name == "td3" else SACConfig)(obs_norm=ObsNormConfig(enabled=True))
    algo = build_algorithm(name, OBS_DIM, -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32), cfg)
    rng = np.random.default_rng(2)
    scale = np.exp(rng.uniform(-3, 2, OBS_DIM))
    for _ in range(3):
        algo.normalizer.update(torch.as_tensor(rng.normal(0.5, 1.0, (64, OBS_DIM)) * scale))
    if sentinel:  # push the mean head toward the macro's sentinel (1, -1, 1): reached at some steps, not all
        head = algo.policy.actor.mu if name == "sac" else algo.policy.actor.mu[-2]
        with torch.no_grad():
            head.bias.copy_(torch.tensor([2.2, -2.2, 2.2]))
    return algo


def record(algo, task_seeds: list[tuple[str, tuple[int, ...]]], **env_kwargs) -> dict:
    """Observation and torque streams of whole episodes (one env per task, an episode per seed) run with the
    harness's policy callable; `starts` are the row indices where each task's env begins."""
    obs_rows, torques, starts, infos = [], [], [], []
    for task, seeds in task_seeds:
        env = make_env(task, max_episode_steps=MAX_STEPS, **env_kwargs)()
        recorder = attach_recorder(env, task)
        starts.append(len(obs_rows))
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(algo.policy.predict(obs))
                done = terminated or truncated
            infos.append(info)
        obs_rows += recorder.obs
        torques += recorder.torques
        env.close()
    return {"obs": np.stack(obs_rows), "torques": np.stack(torques), "starts": starts,
            "infos": infos}


@pytest.fixture(scope="module")
def controller(tmp_path_factory) -> CommandOptions:
    folder = tmp_path_factory.mktemp("controller")
    path = write_controller(folder)
    macro = write_clip(folder / "kick.npz", **clip_arrays(n=6, frequency=50.0))
    return CommandOptions(controller=str(path), macro=str(macro), max_vx=0.8, max_vy=0.5, max_yaw=1.2)


@pytest.mark.slow  # whole episodes of 5 configurations, then a fresh interpreter importing torch: ~30 s
def test_modules_match_the_training_path_in_a_fresh_torch_only_process(tmp_path, controller):
    bounds = make_env(TASK_NAMES[0])().metadata
    low, high = np.asarray(bounds["torque_low"]), np.asarray(bounds["torque_high"])
    every_task = [(task, (i, i + 100)) for i, task in enumerate(TASK_NAMES)]
    no_macro = CommandOptions(controller=controller.controller, gait_threshold=0.3)
    cases = {
        "pd_td3": ("td3", {"action_mode": "pd"}, every_task, False),
        "pd_sac_repeat3": ("sac", {"action_mode": "pd", "action_repeat": 3}, every_task, False),
        "torque_td3": ("td3", {"action_mode": "torque"}, [("goalie_penalty_kick", (0,))], False),
        "command_sac_macro": ("sac", {"action_mode": "command", "command": controller},
                              # kick_to_target seeds whose reset puts the ball in reach, aligned with the target
                              [("goalie_penalty_kick", (0,)), ("obstacle_penalty_kick", (1,)),
                               ("kick_to_target", (0, 40, 15, 52))], True),
        "command_td3_repeat2": ("td3", {"action_mode": "command", "action_repeat": 2, "command": no_macro},
                                every_task, False),
    }
    manifest, recorded = {}, {}
    for name, (algo_name, env_kwargs, task_seeds, sentinel) in cases.items():
        algo = make_algo(algo_name, 3 if env_kwargs["action_mode"] == "command" else 12, sentinel=sentinel)
        recorded[name] = run = record(algo, task_seeds, **env_kwargs)
        np.savez(tmp_path / f"{name}.npz", obs=run["obs"])
        settings = {k: v for k, v in env_kwargs.items() if k != "command"}
        options = env_kwargs.get("command")
        save_module(torque_module(algo.policy, settings, low, high, command=options), tmp_path / f"{name}.pt")
        platform = name == "pd_td3"
        if platform:
            save_module(torque_module(algo.policy, settings, low, high, platform_units=True),
                        tmp_path / f"{name}_platform.pt")
        manifest[name] = {"starts": run["starts"], "batched": name in ("pd_sac_repeat3", "command_td3_repeat2"),
                          "platform": platform}
    (tmp_path / "cases.json").write_text(json.dumps(manifest))

    child = subprocess.run([sys.executable, "-I", "-c", CHILD], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    assert "modules: []" in child.stdout
    out = np.load(tmp_path / "torques.npz")

    # The macro path was exercised: triggers, whole clips, walking between them; never the contact abort, which
    # the module cannot see (submission/torchscript.py).
    macro_infos = [i for i in recorded["command_sac_macro"]["infos"] if i["task_name"] == "kick_to_target"]
    assert all(i["macro_trigger_count"] >= 2 for i in macro_infos)
    assert sum(i["macro_active_steps"] for i in macro_infos) < len(macro_infos) * MAX_STEPS - 50
    assert all(i["macro_aborted_count"] == 0 for i in macro_infos)
    for name, run in recorded.items():
        reference = run["torques"]
        assert np.abs(out[name] - reference).max() <= TOLERANCE, name
        assert np.abs(out[name + "_again"] - reference[:50]).max() <= TOLERANCE, name  # after reset()
        if manifest[name]["batched"]:
            bounds = list(run["starts"]) + [len(reference)]
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                np.testing.assert_allclose(out[name + "_batched"][: b - a, i], reference[a:b], atol=TOLERANCE)
    np.testing.assert_allclose(out["pd_td3_platform"] * (high - low) / 2 + (high + low) / 2,
                               recorded["pd_td3"]["torques"], atol=TOLERANCE)


def test_episode_start_rules():
    """A policy acting every 4 calls; a detected episode start makes it act at once. In torque mode with bounds
    +-1 the torques are the held action itself."""
    algo = make_algo("td3", 12)
    module = torque_module(algo.policy, {"action_mode": "torque", "action_repeat": 4}, -np.ones(12), np.ones(12))
    every_call = torque_module(algo.policy, {"action_mode": "torque"}, -np.ones(12), np.ones(12))
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.normal(0.0, 0.3, (6, OBS_DIM)), dtype=torch.float32)
    obs[:, OBS_SLICES["task_one_hot"]] = torch.tensor([0.0, 0.0, 1.0])
    obs[:, OBS_SLICES["goal_team_0_rel_robot"]] = torch.tensor([-4.0, 0.0, -0.7])

    def acted_on(rows: torch.Tensor) -> list[bool]:
        """Whether each call's held action is the policy's action for that very row (a fresh decision)."""
        module.reset()
        return [bool(torch.equal(module(row), every_call(row))) for row in rows]

    assert acted_on(obs[:5]) == [True, False, False, False, True]  # every 4 calls
    reset_pose = obs[:5].clone()
    reset_pose[2, :24] = 0.0
    assert acted_on(reset_pose)[2]
    task_change = obs[:5].clone()
    task_change[2, OBS_SLICES["task_one_hot"]] = torch.tensor([1.0, 0.0, 0.0])
    assert acted_on(task_change)[2:4] == [True, True]  # changed, and changed back
    jump = obs[:5].clone()
    jump[2:, OBS_SLICES["goal_team_0_rel_robot"]] += torch.tensor([0.6, 0.0, 0.0])
    assert acted_on(jump)[1:4] == [False, True, False]
    small = obs[:5].clone()
    small[2:, OBS_SLICES["goal_team_0_rel_robot"]] += torch.tensor([0.02, 0.0, 0.0])
    assert acted_on(small)[2] is False


def test_torchscript_preprocessor_does_not_normalise():
    source = torchscript_preprocessor_source()
    pre = load_like_platform(source)
    assert pre.NORMALIZE is False and "the TorchScript module normalises" in source
    env = platform_env("kick_to_target")
    obs, info = env.reset(seed=3)
    expected = preprocess_step(obs, info, get_task("kick_to_target").one_hot)
    np.testing.assert_array_equal(pre.modify_state(obs, info), expected)
    env.close()


def test_bad_requests_are_one_line_errors(tmp_path, controller):
    algo = make_algo("td3", 12)
    with pytest.raises(ValueError, match="no TorchScript export"):
        torque_module(algo.policy, {"action_mode": "joystick"}, -np.ones(12), np.ones(12))
    with pytest.raises(ValueError, match="a command policy"):
        torque_module(algo.policy, {"action_mode": "command"}, -np.ones(12), np.ones(12), command=controller)
    command_algo = make_algo("td3", 3)
    with pytest.raises(ValueError, match="no command-mode options"):
        torque_module(command_algo.policy, {"action_mode": "command"}, -np.ones(12), np.ones(12))
    wrong_width = write_controller(tmp_path, width=45, stem="narrow")
    with pytest.raises(ValueError, match=r"does not take a \(1, 47\)") as info:
        torque_module(command_algo.policy, {"action_mode": "command"}, -np.ones(12), np.ones(12),
                      command=CommandOptions(controller=str(wrong_width)))
    assert "\n" not in str(info.value)


def test_command_options_round_trip_through_metadata(controller):
    recorded = json.loads(json.dumps(dataclasses.asdict(controller)))  # as a meta.json would hold it
    assert command_options({"command": recorded}) == controller
    custom = dataclasses.replace(controller, macro_trigger=TriggerConfig(alignment=0.8))
    assert command_options({"command": dataclasses.asdict(custom)}).macro_trigger.alignment == 0.8


def write_checkpoint(folder: Path, mode: str, command: CommandOptions | None = None) -> Path:
    """A checkpoint.pt as train.py leaves it, for an untrained policy of `mode`."""
    algo = make_algo("td3", 3 if mode == "command" else 12)
    act_dim = 3 if mode == "command" else 12
    metadata = {"tasks": list(TASK_NAMES), "task_list": list(TASK_NAMES), "action_mode": mode, "action_repeat": 1,
                "reward_profile": "competition", "obs_dim": OBS_DIM}
    if command is not None:
        metadata["command"] = dataclasses.asdict(command)
    path = folder / "checkpoint.pt"
    save_checkpoint(path, algo_name="td3", config=algo.cfg, algo_state=algo.state_dict(), obs_shape=(OBS_DIM,),
                    action_low=-np.ones(act_dim), action_high=np.ones(act_dim),
                    runner_state={"timesteps": 7, "last_eval": {"comp_eval/C_overall": -1.5}}, metadata=metadata)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("mode", ["pd", "command"])
def test_cli_writes_the_torchscript_export(tmp_path, capsys, controller, mode):
    ckpt = write_checkpoint(tmp_path, mode, controller if mode == "command" else None)
    assert run_cli(export_cli.main, [str(ckpt)]) == 2  # an SB3 zip was asked for
    assert "--torchscript" in one_error_line(capsys)
    assert run_cli(export_cli.main, [str(ckpt), "--torchscript"]) == 0
    folder = tmp_path / "submission_final_torchscript"
    assert sorted(p.name for p in folder.iterdir()) == ["SUBMIT.md", "meta.json", "model.pt", "preprocessor.py"]
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["action_mode"], meta["timesteps"], meta["algo"]) == (mode, 7, "td3")
    assert meta["model_sha256"] == hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    assert (folder / "preprocessor.py").read_text() == torchscript_preprocessor_source()
    module, platform = torch.jit.load(str(tmp_path / "final_model.pt")), torch.jit.load(str(folder / "model.pt"))
    low, high = np.asarray(meta["action_low"]), np.asarray(meta["action_high"])
    obs = record(make_algo("td3", 3 if mode == "command" else 12), [("kick_to_target", (5,))], action_mode=mode,
                 command=controller if mode == "command" else None)["obs"][:40]
    torques = np.stack([module(torch.from_numpy(row)).numpy() for row in obs])
    scaled = np.stack([platform(torch.from_numpy(row)).numpy() for row in obs])
    np.testing.assert_allclose(scaled * (high - low) / 2 + (high + low) / 2, torques, atol=TOLERANCE)
    assert np.abs(torques).max() > 0


def test_cli_bad_input_is_one_line(tmp_path, capsys, controller):
    pd_ckpt = write_checkpoint(tmp_path, "pd")
    assert run_cli(export_cli.main, [str(pd_ckpt), "--torchscript", "--controller", "x.pt"]) == 2
    assert "command-mode policies only" in one_error_line(capsys)
    assert run_cli(export_cli.main, [str(pd_ckpt), "--macro", "kick.npz"]) == 2
    assert "--torchscript exports only" in one_error_line(capsys)
    folder = tmp_path / "command"
    folder.mkdir()
    ckpt = write_checkpoint(folder, "command", controller)
    narrow = write_controller(folder, width=40, stem="narrow")
    assert run_cli(export_cli.main, [str(ckpt), "--torchscript", "--controller", str(narrow)]) == 2
    assert "does not take a (1, 47)" in one_error_line(capsys)
    assert run_cli(export_cli.main, [str(ckpt), "--torchscript", "--controller", str(folder / "missing.pt")]) == 2
    assert "no such file" in one_error_line(capsys)
    lacking = config_dict()
    del lacking["control"]["decimation"]
    keyless = write_controller(folder, config=lacking, stem="keyless")
    assert run_cli(export_cli.main, [str(ckpt), "--torchscript", "--controller", str(keyless)]) == 2
    assert "lacks the key control.decimation" in one_error_line(capsys)
    arrays = clip_arrays()
    del arrays["qpos"]
    no_qpos = write_clip(folder / "no_qpos.npz", **arrays)
    assert run_cli(export_cli.main, [str(ckpt), "--torchscript", "--macro", str(no_qpos)]) == 2
    assert "no 'qpos'" in one_error_line(capsys)
    assert not any(p.suffix == ".pt" and p.stem.startswith("final") for p in folder.iterdir())
