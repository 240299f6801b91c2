"""The walk engine (envs/walk.py): kinematics, targets on hand-computed phases, feedback signs, its
parameter file, the command mode over it, and its TorchScript twin over whole episodes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from envs.command import CommandOptions
from envs.factory import make_env
from envs.walk import (
    _DEFAULT_ANKLE,
    _LEG_LENGTH,
    COMMAND_LIMITS,
    DEFAULT_PARAMS_FILE,
    PARAM_NAMES,
    WalkEngine,
    WalkParams,
    leg_fk,
    leg_ik,
    load_walk_params,
)
from envs.wrappers import T1_DEFAULT_POSE
from submission.torchscript import CommandPolicyModule


def test_leg_ik_inverts_leg_fk_and_recovers_the_default_pose():
    hips, knees = np.array([-0.2, -0.5, 0.1, 0.0]), np.array([0.4, 1.0, 0.3, 0.2])
    x, z = leg_fk(hips, knees)
    hip, knee = leg_ik(x, z)
    np.testing.assert_allclose(hip, hips, atol=1e-9)
    np.testing.assert_allclose(knee, knees, atol=1e-9)
    hip0, knee0 = leg_ik(np.float64(_DEFAULT_ANKLE[0]), np.float64(-_LEG_LENGTH))
    assert hip0 == pytest.approx(-0.2, abs=1e-12) and knee0 == pytest.approx(0.4, abs=1e-12)


def test_leg_fk_by_hand_for_a_straight_leg():
    """All joints at 0: the ankle sits at thigh (-0.014, -0.2359) + shank (0, -0.28)."""
    x, z = leg_fk(np.float64(0.0), np.float64(0.0))
    assert (x, z) == pytest.approx((-0.014, -0.5159))
    # hip pitch +0.1 rotates the whole leg about +y: the ankle moves backward (-x)
    x1, _ = leg_fk(np.float64(0.1), np.float64(0.0))
    assert x1 == pytest.approx(-0.014 * math.cos(0.1) - 0.5159 * math.sin(0.1))


def _engine(**changes) -> WalkEngine:
    return WalkEngine(WalkParams(**changes))


def test_zero_amplitude_is_the_default_pose():
    engine = _engine()
    np.testing.assert_allclose(engine.gait_targets(0.37, 0.0, np.zeros(3)), T1_DEFAULT_POSE, atol=1e-12)


def test_targets_at_hand_computed_phases():
    p = dict(frequency=2.0, step_gain=1.0, lift=0.04, sway=0.0, x_offset=0.0, height=0.0, width=0.0, turn_gain=0.5,
             trunk_pitch=0.0, pitch_per_vx=0.0, lift_per_speed=0.0, ankle_offset=-0.05)
    engine = _engine(**p)
    command = np.array([0.4, 0.0, 0.8])
    stride = 0.4 / (2 * 2.0)  # 0.1 m per step
    yaw_swing = 0.5 * 0.8 / 2.0
    # phase 0.25: the left leg is at mid-swing (cos 0, sin 1): foot under the default x, lifted 0.04 m
    t = engine.gait_targets(0.25, 1.0, command)
    hip, knee = leg_ik(np.float64(_DEFAULT_ANKLE[0]), np.float64(-_LEG_LENGTH + 0.04))
    assert t[0] == pytest.approx(hip) and t[3] == pytest.approx(knee)
    assert t[4] == pytest.approx(-(hip + knee) - 0.05)
    assert t[2] == pytest.approx(0.0, abs=1e-12)  # hip yaw crosses 0 at mid-swing
    # the right leg (phase 0.75: cos 0, sin -1) is in stance: no lift
    hip_r, knee_r = leg_ik(np.float64(_DEFAULT_ANKLE[0]), np.float64(-_LEG_LENGTH))
    assert t[6] == pytest.approx(hip_r) and t[9] == pytest.approx(knee_r)
    # phase 0: left foot at the back of its swing (x - stride/2), right at the front (+ stride/2)
    t0 = engine.gait_targets(0.0, 1.0, command)
    hip_back, _ = leg_ik(np.float64(_DEFAULT_ANKLE[0] - stride / 2), np.float64(-_LEG_LENGTH))
    hip_front, _ = leg_ik(np.float64(_DEFAULT_ANKLE[0] + stride / 2), np.float64(-_LEG_LENGTH))
    assert t0[0] == pytest.approx(hip_back) and t0[6] == pytest.approx(hip_front)
    assert t0[0] > t0[6]  # a foot further back means a larger hip pitch (rotation about +y)
    assert t0[2] == pytest.approx(-yaw_swing / 2) and t0[8] == pytest.approx(yaw_swing / 2)


def test_feedback_signs():
    engine = _engine(ankle_pitch_p=2.0, ankle_pitch_d=0.2, hip_pitch_p=0.5, ankle_roll_p=0.3, ankle_roll_d=0.1,
                     hip_roll_p=0.4)
    pitch = 0.1  # leaning forward: gravity in the body frame gains +x
    out = engine.feedback(np.array([math.sin(pitch), 0.0, -math.cos(pitch)]), np.array([0.0, 0.5, 0.0]))
    assert out[4] == pytest.approx(2.0 * pitch + 0.2 * 0.5) and out[10] == out[4]
    assert out[0] == pytest.approx(0.5 * pitch)
    roll = 0.1  # leaning left: gravity in the body frame gains -y
    out = engine.feedback(np.array([0.0, -math.sin(roll), -math.cos(roll)]), np.array([0.2, 0.0, 0.0]))
    assert out[5] == pytest.approx(0.3 * roll + 0.1 * 0.2) and out[1] == pytest.approx(0.4 * roll)


def test_commands_are_clipped_and_ramped_never_an_error():
    engine = _engine(accel=1.0)
    engine.update(np.array([5.0, -5.0, 9.0]), np.array([0.0, 0.0, -1.0]), np.zeros(3))
    step = engine.params.accel * engine.tick
    np.testing.assert_allclose(engine.command, [step, -step, step])
    for _ in range(200):
        engine.update(np.array([5.0, -5.0, 9.0]), np.array([0.0, 0.0, -1.0]), np.zeros(3))
    np.testing.assert_allclose(engine.command, [COMMAND_LIMITS[1][0], COMMAND_LIMITS[0][1], COMMAND_LIMITS[1][2]])
    assert engine.amplitude == 1.0
    for _ in range(200):
        engine.update(np.zeros(3), np.array([0.0, 0.0, -1.0]), np.zeros(3))
    assert engine.amplitude == 0.0 and engine.phase == 0.0


def _write(tmp_path, params: dict) -> str:
    path = tmp_path / "walk.json"
    path.write_text(json.dumps({"params": params}).replace("NaN", "NaN"))
    return str(path)


def test_the_shipped_parameter_file_loads_and_names_every_parameter():
    params, doc = load_walk_params()
    assert isinstance(params, WalkParams)
    assert set(json.loads(DEFAULT_PARAMS_FILE.read_text())["params"]) == set(PARAM_NAMES)


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.pop("lift"), "missing lift"),
    (lambda p: p.update(bounce=1.0), "unknown bounce"),
    (lambda p: p.update(sway=float("nan")), "sway must be a finite number"),
    (lambda p: p.update(frequency="fast"), "frequency must be a finite number"),
    (lambda p: p.update(frequency=0.0), "frequency must be > 0"),
])
def test_bad_parameter_files_are_one_line_errors(tmp_path, change, message):
    params = dict(json.loads(DEFAULT_PARAMS_FILE.read_text())["params"])
    change(params)
    with pytest.raises(ValueError, match=message) as info:
        load_walk_params(_write(tmp_path, params))
    assert "\n" not in str(info.value) and "walk.json" in str(info.value)


def test_not_json_and_no_params_object_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x00\xff not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_walk_params(junk)
    junk.write_text("[1, 2]")
    with pytest.raises(ValueError, match="'params' object"):
        load_walk_params(junk)


def test_walk_options_refuse_hub_only_settings():
    with pytest.raises(ValueError, match="--controller-config applies to the hub controller"):
        CommandOptions(controller="walk", controller_config="x.yaml")
    with pytest.raises(ValueError, match="--gait-threshold applies to the hub controller"):
        CommandOptions(controller="walk", gait_threshold=0.2)
    with pytest.raises(ValueError, match="walk parameter file applies to --low-level-controller walk"):
        CommandOptions(walk_params="w.json")


def _record_torques(chain) -> list:
    """Make the command wrapper `chain` append the torques of every env step it applies to the returned list."""
    applied = []
    numpy_torques = chain.torques

    def record(action):
        out = numpy_torques(action)
        applied.append(out[0])
        return out

    chain.torques = record
    return applied


def test_bad_kick_files_are_one_line_errors(tmp_path):
    from envs.kick import DEFAULT_KICK_FILE, load_kick_params

    params = dict(json.loads(DEFAULT_KICK_FILE.read_text())["params"])
    params["t_strike"] = 9.0
    with pytest.raises(ValueError, match="t_strike must be in"):
        load_kick_params(_write(tmp_path, params))
    params.pop("t_strike")
    with pytest.raises(ValueError, match="missing t_strike"):
        load_kick_params(_write(tmp_path, params))


class _Constant(torch.nn.Module):
    """A command policy for the twin test: one fixed command in [-1, 1] for every row."""

    def __init__(self, command) -> None:
        super().__init__()
        self.register_buffer("command", torch.tensor(command, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.command.expand(obs.shape[0], 3)


@pytest.mark.parametrize("command", [(0.0, 0.0, 0.0), (0.5, 0.0, 0.3), (0.3, -0.5, -0.6)])
def test_torchscript_twin_equals_the_engine_over_whole_episodes(command):
    """CommandAction over WalkEngine (numpy) vs the scripted CommandPolicyModule over WalkEngineModule:
    the torques of every env step, on the same observations, within 1e-4 N·m."""
    options = CommandOptions(controller="walk", max_vx=0.6, max_vy=0.2, max_yaw=0.8)
    env = make_env("goalie_penalty_kick", action_mode="command", command=options, max_episode_steps=1500,
                   sim="fast")()
    chain = env
    while not hasattr(chain, "controller"):
        chain = chain.env
    module = torch.jit.script(CommandPolicyModule(_Constant(command), chain.controller, chain.limits, None,
                                                  policy_every=1, platform_units=False).eval())
    applied = _record_torques(chain)
    obs, _ = env.reset(seed=0)
    worst, steps = 0.0, 0
    action = np.asarray(command, np.float32)
    while True:
        with torch.inference_mode():
            torques_twin = module(torch.as_tensor(obs)).numpy()
        obs, _, terminated, truncated, _ = env.step(action)
        worst = max(worst, float(np.max(np.abs(torques_twin - applied[-1]))))
        steps += 1
        if terminated or truncated:
            break
    env.close()
    assert steps > 100
    assert worst <= 1e-4, worst
    print(f"steps {steps} worst {worst:.2e}")


class _WalkThenKick(torch.nn.Module):
    """Walk forward until the ball is within 0.45 m, then send the kick macro's sentinel."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        ball = obs[:, 48:50]
        near = torch.linalg.vector_norm(ball, dim=1, keepdim=True) < 0.45
        walk = torch.tensor([[0.8, 0.0, 0.0]]).expand(obs.shape[0], 3)
        kick = torch.tensor([[1.0, -1.0, 1.0]]).expand(obs.shape[0], 3)
        return torch.where(near, kick, walk)


def test_torchscript_twin_equals_the_engine_through_a_kick_macro():
    """The kick macro over the walk engine (frame + balance feedback) in CommandAction and in the module."""
    from envs.preprocess import OBS_SLICES

    assert OBS_SLICES["ball_xpos_rel_robot"].start == 48
    options = CommandOptions(controller="walk", max_vx=0.6, max_vy=0.2, max_yaw=0.8, macro="kick")
    env = make_env("goalie_penalty_kick", action_mode="command", command=options, max_episode_steps=5000,
                   sim="fast")()
    chain = env
    while not hasattr(chain, "controller"):
        chain = chain.env
    policy = _WalkThenKick()
    module = torch.jit.script(CommandPolicyModule(policy, chain.controller, chain.limits, chain.macro,
                                                  policy_every=1, platform_units=False).eval())
    applied = _record_torques(chain)
    obs, _ = env.reset(seed=0)
    worst, triggered = 0.0, 0
    for _ in range(5000):
        with torch.inference_mode():
            x = torch.as_tensor(obs).unsqueeze(0)
            torques_twin = module(x)[0].numpy()
            action = policy(x)[0].numpy()
        obs, _, terminated, truncated, info = env.step(action)
        worst = max(worst, float(np.max(np.abs(torques_twin - applied[-1]))))
        triggered = max(triggered, info.get("macro_trigger_count", 0))
        if terminated or truncated or (triggered and not info["macro_active"]):
            break
    env.close()
    assert triggered >= 1
    assert worst <= 1e-4, worst
