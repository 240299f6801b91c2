"""The command action mode: command scaling, the controller ticking per physics step and reset per
episode, macro trigger / playback / abort and its info keys, the real-env chain, evaluation's
macro_trigger_rate, train.py with a stand-in controller, and one-line errors for bad files."""

import dataclasses
import json
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import train
from envs.command import CommandAction, CommandOptions
from envs.controller import ControllerConfig, JoystickController
from envs.factory import make_env
from envs.macros import MacroPlayer, TriggerConfig
from envs.wrappers import ActionRepeat
from rlcore.cliutil import run_cli
from scoring.eval_metrics import competition_metrics
from scoring.harness import evaluate
from scoring.report import EpisodeRecord, aggregate
from tests.controller_files import T1_JOINTS, config_dict, write_controller
from tests.mocap_files import clip_arrays, write_clip

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

LIMIT = np.tile([45.0, 45.0, 30.0, 65.0, 24.0, 15.0], 2)
DEFAULT = np.tile([-0.2, 0.0, 0.0, 0.4, -0.25, 0.0], 2)
KP = np.tile([200.0, 200.0, 200.0, 200.0, 50.0, 50.0], 2)
KD = np.tile([5.0, 5.0, 5.0, 5.0, 1.0, 1.0], 2)
SENTINEL = np.array([1.0, -1.0, 1.0], np.float32)
WALK = np.array([0.5, 0.0, 0.0], np.float32)
MACRO_KEYS = {"macro_active", "macro_triggered", "macro_step_index", "macro_trigger_count", "macro_active_steps",
              "macro_aborted_count"}


class CountingNet:
    """Records every input; returns zero actions."""

    def __init__(self) -> None:
        self.inputs: list[np.ndarray] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.numpy()[0].copy())
        return torch.zeros(1, 12)


class FakeSoccerEnv(gym.Env):
    """Raw obs [q, qd, ...]; the info keys the controller and the trigger read; reward_terms from `contact_at`."""

    def __init__(self, ball=(0.3, 0.0, -0.7), target=(5.0, 0.5, -0.7), contact_at=None):
        self.action_space = gym.spaces.Box(np.float32(-LIMIT), np.float32(LIMIT), (12,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (39,), np.float32)
        self.ball, self.target, self.contact_at = np.array(ball), np.array(target), contact_at
        self.torques: list[np.ndarray] = []
        self.t = 0

    def _obs(self):
        obs = np.zeros(39, np.float32)
        obs[:12] = 0.01 * self.t
        obs[12:24] = -0.1
        return obs

    def _info(self):
        return {"robot_quat": np.array([0.0, 0.0, 0.0, 1.0]), "robot_gyro": np.zeros(3),
                "ball_xpos_rel_robot": self.ball, "target_xpos_rel_robot": self.target,
                "goal_team_0_rel_robot": np.array([-4.0, 0.0, -0.7]), "goal_team_1_rel_robot": np.array([18, 0, -0.7]),
                "player_team": np.array([1.0, 0.0])}

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.torques.append(np.array(action, np.float64))
        self.t += 1
        info = self._info()
        info["reward_terms"] = {"ball_hits": 0.69 if self.t == self.contact_at else 0.0, "success": False}
        return self._obs(), 0.0, False, False, info


def command_env(limits=(2.0, 0.5, 1.5), macro_frames=3, frequency=250.0, **fake) -> tuple[CommandAction, CountingNet]:
    net = CountingNet()
    cfg = ControllerConfig.from_dict(config_dict())
    ctrl = JoystickController(cfg, net, joint_names=T1_JOINTS, torque_low=-LIMIT, torque_high=LIMIT, env_dt=0.002)
    macro = None
    if macro_frames:
        macro = MacroPlayer(np.linspace(0.1, 0.3, macro_frames)[:, None] * np.ones(12), frequency, env_dt=0.002)
    return CommandAction(FakeSoccerEnv(**fake), ctrl, limits=np.array(limits), task="kick_to_target", macro=macro), net


def test_command_is_scaled_to_the_velocity_limits_and_clipped():
    env, net = command_env(macro_frames=0)
    assert env.action_space == gym.spaces.Box(-1, 1, (3,), np.float32)
    env.reset()
    env.step(np.array([0.5, -1.0, 0.2], np.float32))
    np.testing.assert_allclose(net.inputs[0][6:9], [1.0, -0.5, 0.3], rtol=1e-6)  # norm scales 1 in the YAML
    env.reset()
    env.step(np.array([3.0, 0.0, -7.0], np.float32))
    np.testing.assert_allclose(net.inputs[1][6:9], [2.0, 0.0, -1.5], rtol=1e-6)
    # zero actions: PD to the default pose from the raw obs (q = 0.01 t, qd = -0.1)
    q = 0.01 * np.ones(12)
    np.testing.assert_allclose(env.env.torques[-1], np.clip(KP * (DEFAULT - 0.0) - KD * -0.1, -LIMIT, LIMIT),
                               rtol=1e-6)
    env.step(WALK)
    np.testing.assert_allclose(env.env.torques[-1], np.clip(KP * (DEFAULT - q) - KD * -0.1, -LIMIT, LIMIT),
                               rtol=1e-6)


def test_no_macro_no_macro_keys():
    env, _ = command_env(macro_frames=0)
    _, info = env.reset()
    assert not MACRO_KEYS & set(info)
    *_, info = env.step(SENTINEL)
    assert not MACRO_KEYS & set(info)


def test_controller_ticks_every_physics_step_under_action_repeat():
    env, net = command_env(macro_frames=0)
    repeated = ActionRepeat(env, 4)
    repeated.reset()
    for _ in range(5):
        repeated.step(WALK)
    assert env.controller.it == 20 and len(net.inputs) == 2  # network at physics steps 0 and 10


def test_every_reset_resets_controller_and_macro():
    env, net = command_env(macro_frames=0)
    env.reset()
    for _ in range(13):
        env.step(WALK)
    assert env.controller.it == 13 and env.controller.phase > 0
    env.reset()
    assert (env.controller.it, env.controller.phase) == (0, 0.0)
    env.step(WALK)
    assert len(net.inputs) == 3  # steps 0, 10, then 0 of the new episode
    np.testing.assert_array_equal(net.inputs[-1][9:11], [1.0, 0.0])
    env, _ = command_env()
    env.reset()
    env.step(SENTINEL)
    assert env.macro.counters()["macro_trigger_count"] == 1 and env.macro.active
    _, info = env.reset()
    assert not env.macro.active and env.macro.counters() == dict.fromkeys(env.macro.counters(), 0)
    assert info["macro_trigger_count"] == 0 and info["macro_active"] is False


def test_macro_triggers_plays_its_frames_on_the_env_clock_then_hands_back():
    env, net = command_env(macro_frames=3, frequency=250.0)  # 250 Hz on a 500 Hz env: each frame twice
    env.reset()
    infos = [env.step(SENTINEL if k == 0 else WALK)[4] for k in range(8)]
    assert [i["macro_step_index"] for i in infos] == [0, 0, 1, 1, 2, 2, -1, -1]
    assert [i["macro_triggered"] for i in infos] == [True] + [False] * 7
    assert [i["macro_active"] for i in infos] == [True] * 6 + [False] * 2
    assert infos[-1]["macro_trigger_count"] == 1 and infos[-1]["macro_active_steps"] == 6
    assert infos[-1]["macro_aborted_count"] == 0
    frames = np.linspace(0.1, 0.3, 3)
    for k, frame in enumerate([0, 0, 1, 1, 2, 2]):  # stateless PD to the frame, from the step's joint state
        q = 0.01 * k
        expected = np.clip(KP * (DEFAULT + frames[frame] - q) - KD * -0.1, -LIMIT, LIMIT)
        np.testing.assert_allclose(env.env.torques[k], expected, atol=1e-4)  # float32 macro frames
    assert len(net.inputs) == 1 and env.controller.it == 2  # the controller only ran after the macro


@pytest.mark.parametrize(("fake", "action"), [
    ({}, np.array([1.0, -1.0, 0.9], np.float32)),        # not the sentinel
    ({"ball": (-0.3, 0.0, -0.7)}, SENTINEL),              # ball behind
    ({"ball": (0.8, 0.0, -0.7)}, SENTINEL),               # ball too far
    ({"target": (0.0, 5.0, -0.7)}, SENTINEL),             # target off to the side
])
def test_macro_does_not_trigger_otherwise(fake, action):
    env, net = command_env(**fake)
    env.reset()
    *_, info = env.step(action)
    assert info["macro_triggered"] is False and info["macro_trigger_count"] == 0 and len(net.inputs) == 1


def test_macro_aborts_on_ball_contact():
    env, net = command_env(macro_frames=10, frequency=500.0, contact_at=3)
    env.reset()
    infos = [env.step(SENTINEL if k == 0 else WALK)[4] for k in range(4)]
    assert [i["macro_active"] for i in infos] == [True, True, True, False]
    assert infos[2]["macro_aborted_count"] == 1 and not env.macro.active  # counted on the contact step
    assert infos[3]["macro_step_index"] == -1 and len(net.inputs) == 1  # the controller took over


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("command")
    model = write_controller(folder)
    macro = write_clip(folder / "kick.npz", **clip_arrays(n=5, frequency=50.0))
    arrays = clip_arrays(n=5)
    del arrays["qpos"]
    no_qpos = write_clip(folder / "no_qpos.npz", **arrays)
    narrow = write_controller(folder, width=40, stem="narrow")
    doc = config_dict()
    del doc["control"]["damping"]
    no_key = write_controller(folder, config=doc, stem="nodamping")
    return {"model": model, "macro": macro, "no_qpos": no_qpos, "narrow": narrow, "no_key": no_key}


def test_real_env_chain(files):
    options = CommandOptions(controller=str(files["model"]), macro=str(files["macro"]))
    env = make_env("kick_to_target", action_mode="command", action_repeat=2, command=options, seed=0)()
    try:
        assert env.action_space == gym.spaces.Box(-1, 1, (3,), np.float32) and env.observation_space.shape == (89,)
        assert env.metadata["command"]["controller"] == str(files["model"])
        inner = env
        while not isinstance(inner, CommandAction):
            inner = inner.env
        obs, info = env.reset(seed=1)
        assert obs.shape == (89,) and MACRO_KEYS <= set(info)
        for _ in range(6):
            obs, _, _, _, info = env.step(WALK)
        assert inner.controller.it == 12 and info["physics_steps"] == 2 and MACRO_KEYS <= set(info)
        env.reset(seed=2)
        assert inner.controller.it == 0
    finally:
        env.close()


def test_evaluation_counts_the_macro_triggers_of_a_scripted_episode(files):
    """Two lock-step episodes on the real env: episode 0 (row 0) holds the sentinel, episode 1 (row 1) walks.
    The trigger geometry is opened up (any ball distance, any alignment) so the sentinel alone fires, and the
    macro is cut to its first frame: a 50 Hz frame lasts 10 steps of the 500 Hz env, so over 25 steps the
    sentinel fires at steps 0, 10 and 20. By hand: triggers [3, 0], rate 1/2."""
    options = CommandOptions(controller=str(files["model"]), macro=str(files["macro"]), macro_max_frames=1,
                             macro_trigger=TriggerConfig(ball_radius=100.0, alignment=-1.0))
    calls = []

    def policy(obs):
        calls.append(len(obs))
        return np.stack([SENTINEL, WALK])[:len(obs)]

    result = evaluate(policy, ["kick_to_target"], 2, [0], batch_size=2, action_mode="command", command=options,
                      max_episode_steps=25)
    assert calls == [2] * 25  # both episodes ran every step in lock-step, rows in episode order
    records = result.records["kick_to_target"]
    assert [(r.macro_triggers, r.length, r.truncated) for r in records] == [(3, 25, True), (0, 25, True)]
    assert result.summary("kick_to_target")["macro_trigger_rate"] == 0.5
    assert competition_metrics(result)["comp_eval/kick_to_target/macro_trigger_rate"] == 0.5
    plain = evaluate(lambda obs: np.zeros((len(obs), 12)), ["kick_to_target"], 1, [0], max_episode_steps=5)
    assert "macro_trigger_rate" not in plain.summary("kick_to_target")


def test_macro_trigger_rate_is_the_share_of_episodes_with_a_trigger():
    def record(triggers):
        return EpisodeRecord("kick_to_target", 0, {"success": False}, 10, True, False, triggers)

    assert aggregate([record(2), record(0), record(1), record(0)])["macro_trigger_rate"] == 0.5
    assert "macro_trigger_rate" not in aggregate([record(None)])


def test_make_env_rejects_bad_command_setups_before_building(files, tmp_path):
    with pytest.raises(ValueError, match="command options apply to action_mode 'command'"):
        make_env("kick_to_target", command=CommandOptions(controller=str(files["model"])))
    with pytest.raises(ValueError, match="no such file"):
        make_env("kick_to_target", action_mode="command", command=CommandOptions(controller=str(tmp_path / "x.pt")))
    with pytest.raises(ValueError, match="no 'qpos'"):
        make_env("kick_to_target", action_mode="command",
                 command=CommandOptions(controller=str(files["model"]), macro=str(files["no_qpos"])))
    with pytest.raises(ValueError, match="max_vx must be finite and > 0"):
        CommandOptions(max_vx=0.0)


def test_options_round_trip_through_run_metadata():
    options = CommandOptions(controller="c.pt", max_vy=0.3, macro="goal_kick",
                             macro_trigger=TriggerConfig(threshold=0.9, pattern=(1.0, 1.0, -1.0)))
    saved = json.loads(json.dumps(dataclasses.asdict(options)))  # tuples become lists, as in checkpoint metadata
    assert CommandOptions.from_dict(saved) == options


def test_train_command_mode_with_the_stand_in(files, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["--action-mode", "command", "--low-level-controller", str(files["model"]), "--macro", str(files["macro"]),
            "--tasks", "kick_to_target", "--total-timesteps", "300", "--n-envs", "1", "--eval-freq", "0",
            "--eval-episodes", "1", "--eval-seeds", "0", "--learning-starts", "100", "--net-arch", "32,32",
            "--command-limits", "0.8,0.4,1.0", "--gait-threshold", "0.1", "--max-episode-steps", "200",
            "--save-dir", str(run)]
    assert run_cli(train.main, argv) == 0
    out = capsys.readouterr().out
    assert (run / "checkpoint.pt").is_file() and not (run / "final_model.zip").exists()
    assert f"final model: {run / 'final_model.pt'}" in out  # command mode exports TorchScript, not an SB3 zip
    assert (run / "submission_final_torchscript" / "model.pt").is_file()
    meta = torch.load(run / "checkpoint.pt", weights_only=False)["metadata"]
    assert meta["action_mode"] == "command" and meta["command"]["max_vy"] == 0.4
    assert meta["command"]["gait_threshold"] == 0.1 and meta["command"]["macro"] == str(files["macro"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--low-level-controller", "MISSING"], "low-level controller: no such file"),
    (["--low-level-controller", "narrow"], r"does not take a \(1, 47\) observation"),
    (["--low-level-controller", "no_key"], "lacks the key control.damping"),
    (["--low-level-controller", "model", "--macro", "no_qpos"], "no 'qpos'"),
    (["--low-level-controller", "model", "--command-limits", "1,2"], "--command-limits must be three numbers"),
    (["--low-level-controller", "model", "--gait-threshold", "-1"], "gait_threshold must be finite and >= 0"),
])
def test_train_bad_command_inputs_exit_2_with_one_line(files, tmp_path, capsys, flags, message):
    argv = [str(files[f]) if f in files else str(tmp_path / f) if f == "MISSING" else f for f in flags]
    run = tmp_path / "run"
    assert run_cli(train.main, ["--action-mode", "command", *argv, "--tasks", "kick_to_target", "--n-envs", "1",
                                "--save-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    assert re.search(message, err)
    assert not run.exists()


def test_train_command_flags_need_command_mode(tmp_path, capsys):
    assert run_cli(train.main, ["--macro", "goal_kick", "--save-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err == "error: --macro applies to --action-mode command only\n"

