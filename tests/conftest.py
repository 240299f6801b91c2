"""Test setup: the repo root on sys.path (tests import evaluate.py in-process) and headless rendering."""

import os
import sys
from pathlib import Path

# mujoco reads MUJOCO_GL when it is first imported; EGL renders without a display.
os.environ.setdefault("MUJOCO_GL", "egl")

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
