"""Every metric key the engine logs, spelled once (SB3's train/, rollout/, time/ keys; docs/design.md)."""

CRITIC_LOSS = "train/critic_loss"
ACTOR_LOSS = "train/actor_loss"
ENT_COEF = "train/ent_coef"
ENT_COEF_LOSS = "train/ent_coef_loss"
POLICY_GRADIENT_LOSS = "train/policy_gradient_loss"
VALUE_LOSS = "train/value_loss"
ENTROPY_LOSS = "train/entropy_loss"
APPROX_KL = "train/approx_kl"
CLIP_FRACTION = "train/clip_fraction"
EXPLAINED_VARIANCE = "train/explained_variance"
LOSS = "train/loss"
STD = "train/std"
N_UPDATES = "train/n_updates"

EP_REW_MEAN = "rollout/ep_rew_mean"
EP_LEN_MEAN = "rollout/ep_len_mean"

FPS = "time/fps"
TOTAL_TIMESTEPS = "time/total_timesteps"

EVAL_MEAN_RETURN = "eval/mean_reward"
EVAL_MEAN_LENGTH = "eval/mean_ep_length"


def headline(scores: dict[str, float]) -> dict[str, float]:
    """The scores worth a line of output, in order: names with at most one namespace level
    (`eval/mean_reward`, `comp_eval/C_overall`, `comp_eval/<task>`), not per-term details below them."""
    return {key: value for key, value in scores.items() if key.count("/") <= 1}
