"""A stand-in walking controller for tests: a small random TorchScript net with the real interface
((1, 47) -> (1, 12)) and a YAML config with the real keys and the reference values of
docs/seed_pipeline.md (booster_gym T1)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import yaml

T1_JOINTS = [f"robot_0:{side}_{joint}" for side in ("Left", "Right")
             for joint in ("Hip_Pitch", "Hip_Roll", "Hip_Yaw", "Knee_Pitch", "Ankle_Pitch", "Ankle_Roll")]
"""The leg actuator names of the sai_mujoco Lower T1 model, in action order."""

REFERENCE_CONFIG = {
    "init_state": {
        "pos": [0.0, 0.0, 0.72],
        "rot": [0.0, 0.0, 0.0, 1.0],
        "default_joint_angles": {"Hip_Pitch": -0.2, "Hip_Roll": 0.0, "Hip_Yaw": 0.0, "Knee_Pitch": 0.4,
                                 "Ankle_Pitch": -0.25, "Ankle_Roll": 0.0, "default": 0.0},
    },
    "control": {
        "stiffness": {"Hip": 200.0, "Knee": 200.0, "Ankle": 50.0},
        "damping": {"Hip": 5.0, "Knee": 5.0, "Ankle": 1.0},
        "action_scale": 1.0,
        "decimation": 10,
    },
    "normalization": {"gravity": 1.0, "ang_vel": 1.0, "lin_vel": 1.0, "dof_pos": 1.0, "dof_vel": 0.1,
                      "clip_actions": 1.0},
    "env": {"num_actions": 12, "num_observations": 47},
    "commands": {"gait_frequency": [1.0, 2.0]},
    "sim": {"dt": 0.002},
}


class StandInNet(torch.nn.Module):
    """Random small actions: 0.2 * tanh(W x + b)."""

    def __init__(self, width: int = 47, outputs: int = 12) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.2 * torch.tanh(self.fc(x))


def config_dict(**sections: dict) -> dict:
    """REFERENCE_CONFIG with the given sections' keys replaced (e.g. normalization={"dof_vel": 0.5})."""
    doc = copy.deepcopy(REFERENCE_CONFIG)
    for section, values in sections.items():
        doc[section].update(values)
    return doc


def write_controller(folder: Path, *, width: int = 47, outputs: int = 12, config: dict | None = None,
                     stem: str = "controller") -> Path:
    """Write <stem>.pt (scripted StandInNet, seeded) and <stem>.yaml next to it; returns the .pt path."""
    torch.manual_seed(0)
    path = Path(folder) / f"{stem}.pt"
    torch.jit.script(StandInNet(width, outputs)).save(str(path))
    path.with_suffix(".yaml").write_text(yaml.safe_dump(config if config is not None else REFERENCE_CONFIG))
    return path
