"""The soccer side: task table, 89-dim observation, wrappers and env factories (no learning here)."""
