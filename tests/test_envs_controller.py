"""The walking controller: 47-dim observation element by element, decimation, PD torques, gait clock and
switch-off threshold, per-episode reset, config/network checks, the per-process file cache."""

import math

import numpy as np
import pytest
import torch
import yaml

from envs import controller as controller_module
from envs.controller import (
    ControllerConfig,
    JoystickController,
    actuator_names,
    controller_files,
    env_step_dt,
    load_controller,
)
from envs.factory import make_env
from tests.controller_files import T1_JOINTS, config_dict, write_controller

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

LIMIT = np.tile([45.0, 45.0, 30.0, 65.0, 24.0, 15.0], 2)
DEFAULT = np.tile([-0.2, 0.0, 0.0, 0.4, -0.25, 0.0], 2)
KP = np.tile([200.0, 200.0, 200.0, 200.0, 50.0, 50.0], 2)
KD = np.tile([5.0, 5.0, 5.0, 5.0, 1.0, 1.0], 2)
S = math.sqrt(0.5)
QUAT = np.array([S, 0.0, 0.0, S])  # xyzw: 90 degrees about x -> body-frame gravity (0, -1, 0)
GYRO = np.array([0.1, -0.2, 0.3])
Q = np.arange(12) * 0.01
QD = np.arange(12) * -0.5
RAW_OBS = np.concatenate([Q, QD, np.zeros(15)]).astype(np.float32)
INFO = {"robot_quat": QUAT, "robot_gyro": GYRO}
NET_OUT = np.linspace(-1.5, 1.5, 12)


class RecordingNet:
    """Stands for the TorchScript net: records (controller.it, input) per call, returns NET_OUT."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, np.ndarray]] = []
        self.controller: JoystickController | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.controller.it, x.numpy().copy()))
        return torch.as_tensor(NET_OUT[None], dtype=torch.float32)


def make_controller(net=None, env_dt=0.002, gait_threshold=0.05, **sections) -> tuple[JoystickController, object]:
    cfg = ControllerConfig.from_dict(config_dict(**sections))
    net = net if net is not None else RecordingNet()
    ctrl = JoystickController(cfg, net, joint_names=T1_JOINTS, torque_low=-LIMIT, torque_high=LIMIT, env_dt=env_dt,
                              gait_threshold=gait_threshold)
    if isinstance(net, RecordingNet):
        net.controller = ctrl
    return ctrl, net


def test_joint_tables_match_actuator_names_longest_key_first():
    ctrl, _ = make_controller()
    np.testing.assert_array_equal(ctrl.default_pose, DEFAULT)
    np.testing.assert_array_equal(ctrl.kp, KP)
    np.testing.assert_array_equal(ctrl.kd, KD)
    # "Knee_Pitch" and "Pitch" both match the knee: the longer key wins; "default" is the fallback angle.
    cfg = ControllerConfig.from_dict(config_dict(init_state={"default_joint_angles": {"Pitch": 1.0, "Knee_Pitch": 2.0,
                                                                                       "default": -3.0}}))
    ctrl = JoystickController(cfg, RecordingNet(), joint_names=T1_JOINTS, torque_low=-LIMIT, torque_high=LIMIT,
                              env_dt=0.002)
    np.testing.assert_array_equal(ctrl.default_pose[:6], [1.0, -3.0, -3.0, 2.0, 1.0, -3.0])


def test_observation_layout_element_by_element():
    norm = {"gravity": 2.0, "ang_vel": 0.25, "lin_vel": 0.5, "dof_pos": 3.0, "dof_vel": 0.1, "clip_actions": 1.0}
    ctrl, net = make_controller(normalization=norm)
    command = np.array([0.4, -0.2, 0.6])
    for _ in range(11):
        ctrl.step(command, RAW_OBS, INFO)
    assert [it for it, _ in net.calls] == [0, 10]
    phase = 10 * 0.002 * 1.5  # the phase when the second call's observation is built
    clipped = np.clip(NET_OUT, -1.0, 1.0)
    for (it, x), previous in zip(net.calls, (np.zeros(12), clipped), strict=True):
        obs = x[0]
        assert x.shape == (1, 47) and x.dtype == np.float32
        p = 0.0 if it == 0 else phase
        expected = np.concatenate([
            [0.0, -2.0, 0.0],                                   # [0:3]  gravity (0, -1, 0) * 2
            [0.025, -0.05, 0.075],                              # [3:6]  gyro * 0.25
            [0.2, -0.1],                                        # [6:8]  vx, vy * 0.5
            [0.15],                                             # [8]    yaw * 0.25
            [math.cos(2 * math.pi * p), math.sin(2 * math.pi * p)],  # [9:11] gait clock
            (Q - DEFAULT) * 3.0,                                # [11:23]
            QD * 0.1,                                           # [23:35]
            previous,                                           # [35:47] previous clipped actions
        ])
        np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-7)


def test_network_runs_every_decimation_steps_and_pd_holds_its_targets_between():
    ctrl, net = make_controller()
    torques = [ctrl.step(np.array([0.5, 0.0, 0.0]), RAW_OBS, INFO) for _ in range(25)]
    assert [it for it, _ in net.calls] == [0, 10, 20]
    targets = DEFAULT + 1.0 * np.clip(NET_OUT, -1.0, 1.0)
    expected = np.clip(KP * (targets - Q) - KD * QD, -LIMIT, LIMIT)
    for tau in torques:
        assert tau.dtype == np.float32 and tau.shape == (12,)
        np.testing.assert_allclose(tau, expected, rtol=1e-6)
    # decimation 5 in the config: calls at 0, 5, 10, 15, 20
    ctrl, net = make_controller(control={"decimation": 5})
    for _ in range(21):
        ctrl.step(np.array([0.5, 0.0, 0.0]), RAW_OBS, INFO)
    assert [it for it, _ in net.calls] == [0, 5, 10, 15, 20]


def test_stateless_pd_toward_macro_actions():
    ctrl, _ = make_controller(control={"action_scale": 0.5})
    actions = np.full(12, 0.2)
    expected = np.clip(KP * (DEFAULT + 0.5 * 0.2 - Q) - KD * QD, -LIMIT, LIMIT)
    np.testing.assert_allclose(ctrl.pd(ctrl.action_targets(actions), Q, QD), expected, rtol=1e-6)
    assert ctrl.it == 0  # no state touched


def test_gait_phase_advances_by_dt_times_mean_frequency():
    ctrl, _ = make_controller()
    for k in range(1, 401):
        ctrl.step(np.array([0.5, 0.0, 0.0]), RAW_OBS, INFO)
        assert ctrl.phase == pytest.approx(math.fmod(k * 0.002 * 1.5, 1.0), abs=1e-9)
    assert ctrl.phase == pytest.approx(0.2, abs=1e-9)  # 400 * 0.003 = 1.2


@pytest.mark.parametrize(("command", "threshold", "on"), [
    ((0.0, 0.0, 0.0), 0.05, False),     # the seed's only "off"
    ((0.03, 0.03, 0.0), 0.05, False),   # norm 0.042: off (the seed stepped in place)
    ((0.0, 0.0, -0.049), 0.05, False),
    ((0.03, 0.04, 0.0), 0.05, True),    # norm 0.05: on
    ((0.03, 0.04, 0.0), 0.1, False),    # a configured threshold
    ((0.0, 0.0, 0.2), 0.1, True),       # turning in place walks
])
def test_gait_switches_off_below_the_command_norm_threshold(command, threshold, on):
    ctrl, net = make_controller(gait_threshold=threshold)
    for _ in range(11):
        ctrl.step(np.array(command), RAW_OBS, INFO)
    assert ctrl.gait_on is on
    gait_obs = net.calls[1][1][0, 9:11]
    if on:
        assert ctrl.phase == pytest.approx(11 * 0.002 * 1.5)
        np.testing.assert_allclose(gait_obs, [math.cos(0.06 * math.pi), math.sin(0.06 * math.pi)], rtol=1e-6)
    else:
        assert ctrl.phase == 0.0
        np.testing.assert_array_equal(gait_obs, [0.0, 0.0])


def test_reset_clears_phase_counter_actions_and_targets():
    ctrl, net = make_controller()
    for _ in range(13):
        ctrl.step(np.array([0.5, 0.2, 0.0]), RAW_OBS, INFO)
    assert ctrl.it == 13 and ctrl.phase > 0 and ctrl.actions.any()
    ctrl.reset()
    assert (ctrl.it, ctrl.phase, ctrl.gait_on) == (0, 0.0, False)
    np.testing.assert_array_equal(ctrl.actions, np.zeros(12))
    np.testing.assert_array_equal(ctrl.targets, DEFAULT)
    ctrl.step(np.array([0.5, 0.2, 0.0]), RAW_OBS, INFO)
    assert [it for it, _ in net.calls] == [0, 10, 0]  # a fresh episode calls the net at once
    np.testing.assert_array_equal(net.calls[-1][1][0, 35:47], np.zeros(12))  # no previous actions
    np.testing.assert_array_equal(net.calls[-1][1][0, 9:11], [1.0, 0.0])     # phase 0


def test_env_step_must_match_the_controller_dt():
    with pytest.raises(ValueError, match="sim.dt is 0.002 s but one env step is 0.004 s"):
        make_controller(env_dt=0.004)
    with pytest.raises(ValueError, match="sim.dt is 0.005 s"):
        make_controller(sim={"dt": 0.005})


def test_real_env_model_gives_joint_names_and_step():
    env = make_env("kick_to_target")()
    try:
        assert actuator_names(env.unwrapped) == T1_JOINTS
        assert env_step_dt(env.unwrapped) == pytest.approx(0.002)
    finally:
        env.close()


@pytest.mark.parametrize("key", ["init_state.default_joint_angles", "control.stiffness", "control.damping",
                                 "control.action_scale", "control.decimation", "normalization.gravity",
                                 "normalization.dof_vel", "normalization.clip_actions", "env.num_actions",
                                 "env.num_observations", "commands.gait_frequency", "sim.dt"])
def test_config_lacking_a_key_is_a_one_line_error(tmp_path, key):
    doc = config_dict()
    section, name = key.split(".")
    del doc[section][name]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match=f"lacks the key {key}") as err:
        ControllerConfig.from_yaml(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(("sections", "message"), [
    ({"control": {"decimation": 2.5}}, "control.decimation must be an integer"),
    ({"control": {"decimation": 0}}, "control.decimation must be an integer >= 1"),
    ({"env": {"num_observations": 48}}, "env.num_observations must be 47"),
    ({"env": {"num_actions": 23}}, "env.num_actions must be 12"),
    ({"normalization": {"dof_vel": "fast"}}, "normalization.dof_vel must be a number"),
    ({"sim": {"dt": 0.0}}, "sim.dt must be > 0"),
    ({"control": {"stiffness": {"Hip": 200.0, "Knee": 200.0}}}, "stiffness has no entry for joint 'robot_0:Left_Ankle"),
])
def test_bad_config_values(sections, message):
    with pytest.raises(ValueError, match=message):
        make_controller(**sections)


def test_network_interface_checked_at_load(tmp_path):
    cfg, net = load_controller(*controller_files(str(write_controller(tmp_path)), None))
    assert cfg.decimation == 10 and cfg.gait_frequency == 1.5 and cfg.sim_dt == 0.002
    assert tuple(net(torch.zeros(1, 47)).shape) == (1, 12)
    narrow = write_controller(tmp_path, width=40, stem="narrow")
    with pytest.raises(ValueError, match=r"does not take a \(1, 47\) observation") as err:
        load_controller(*controller_files(str(narrow), None))
    assert "\n" not in str(err.value)
    six = write_controller(tmp_path, outputs=6, stem="six")
    with pytest.raises(ValueError, match=r"returns \(1, 6\), expected \(1, 12\)"):
        load_controller(*controller_files(str(six), None))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    (tmp_path / "junk.yaml").write_text(yaml.safe_dump(config_dict()))
    with pytest.raises(ValueError, match="not a TorchScript controller"):
        load_controller(*controller_files(str(junk), None))


def test_controller_files_missing(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        controller_files(str(tmp_path / "none.pt"), None)
    model = write_controller(tmp_path)
    model.with_suffix(".yaml").unlink()
    with pytest.raises(ValueError, match="controller.yaml .the default next to controller.pt"):
        controller_files(str(model), None)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(config_dict()))
    assert controller_files(str(model), str(other)) == (model, other)


def test_files_are_loaded_once_per_process(tmp_path, monkeypatch):
    monkeypatch.setattr(controller_module, "_LOADED", {})
    loads = []
    real_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    files = controller_files(str(write_controller(tmp_path)), None)
    first = load_controller(*files)
    second = load_controller(*files)
    assert len(loads) == 1 and first[1] is second[1] and first[0] is second[0]
