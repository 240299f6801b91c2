"""Skills found by optimisation, not by RL: the walk tuner (CMA-ES), the kick and the scripted striker.

skills imports envs and scoring; it never imports rlcore (no learning here)."""
