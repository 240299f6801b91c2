"""Submissions: the SB3 zip, its statistics and the sai_rl submission folder written next to every saved
model (bundle), the generated numpy Preprocessor (preprocessor), zips as policies or warm starts (models), and
the TorchScript torque module that carries pd and command policies (torchscript). It joins rlcore (the zip
writer/reader) and envs (the observation layout, the controller): train.py and evaluate.py import it; rlcore
and envs never do.
"""

from submission.bundle import (
    MODEL_FILES,
    NotExportable,
    check_exportable,
    check_run_metadata,
    env_spaces,
    read_meta,
    real_action_bounds,
    sidecar_path,
    write_model,
)
from submission.models import WarmStart, ZipPolicy, load_zip_policy, read_zip
from submission.preprocessor import PLATFORM_IMPORT_LINE, load_like_platform, preprocessor_source
from submission.torchscript import torchscript_preprocessor_source, torque_module, write_torchscript

__all__ = ["MODEL_FILES", "PLATFORM_IMPORT_LINE", "NotExportable", "WarmStart", "ZipPolicy", "check_exportable",
           "check_run_metadata",
           "env_spaces", "load_like_platform", "load_zip_policy", "preprocessor_source", "read_meta", "read_zip",
           "real_action_bounds", "sidecar_path", "torchscript_preprocessor_source", "torque_module", "write_model",
           "write_torchscript"]
