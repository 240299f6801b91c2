"""rlcore: a hand-written PyTorch RL engine (TD3, SAC, PPO) for gymnasium Box tasks.

It knows gymnasium spaces and torch and nothing of soccer (docs/design.md).
"""
