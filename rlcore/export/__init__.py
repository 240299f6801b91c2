"""SB3-compatible zips: our TD3/SAC/PPO networks written as Stable-Baselines3 model files, and read back.

Neither direction imports stable_baselines3 (a test dependency only); the format facts are in
docs/sb3_zip.md. Like all of rlcore this knows no soccer: callers pass the real env's bounds.
"""

from rlcore.export.reader import SB3Zip, check_compatible, load_zip_weights, policy_from_zip, read_sb3_zip
from rlcore.export.writer import export_sb3_zip, sb3_policy_state, write_sb3_zip

__all__ = ["SB3Zip", "check_compatible", "export_sb3_zip", "load_zip_weights", "policy_from_zip", "read_sb3_zip",
           "sb3_policy_state", "write_sb3_zip"]
