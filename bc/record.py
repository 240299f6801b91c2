"""Record demonstrations: run a policy on tasks x reset seeds and save its real transitions (bc/rollouts.py).

    python -m bc.record --policy stand --tasks goalie_penalty_kick,obstacle_penalty_kick \\
        --seeds 10,11,12,13,14 --noise 0.1 --out runs/bc/stand_demos.npz

The file serves both `python -m bc.train --dataset` and `train.py --bc-replay-dataset`. --seeds are env reset
seeds; evaluate.py derives its reset seeds from its eval seeds (scoring/harness.py), so pick seeds outside
those to keep the evaluation episodes unseen. Policy files are read by the one policy loader
(workflow/policies.py, as evaluate.py --model reads them) and recorded in the env settings they act in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import torch

from bc.dataset import save_npz
from bc.rollouts import Episode, RecordOptions, record_rollouts, rollout_arrays
from bc.train import resolve_device
from envs.factory import ACTION_MODES, REWARD_PROFILES
from envs.fastsim import SIMS
from envs.tasks import parse_task_names
from rlcore.cliutil import ArgumentParser, UsageError, finite_float, parse_seeds, run_cli, seed_type
from rlcore.fileio import check_output_file
from skills.striker import striker_command_options
from workflow.policies import SCRIPTED, LoadedPolicy, load_policy, scripted_policy


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m bc.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="stand",
                        help="'stand' (the scripted stand controller), 'striker' (the scripted striker, command "
                        "mode), or a policy file: a train.py checkpoint.pt or final_model.zip, a BC actor, a "
                        "TorchScript torque module (default stand)")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--tasks", default="all", help="comma-separated task names, or all (default)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated reset seeds, one episode each per "
                        "task (default 0,1,2,3,4)")
    parser.add_argument("--noise", type=finite_float, default=0.1,
                        help="std of Gaussian noise on the EXECUTED action, as a fraction of the bounds; labels stay "
                        "clean (default 0.1; 0 gives clean demos, which BC of the stand controller cannot learn from)")
    parser.add_argument("--noise-seed", type=seed_type, default=0, help="seed of the noise generators (default 0)")
    parser.add_argument("--action-mode", choices=sorted(ACTION_MODES),
                        help="action space recorded (default: the policy's; torque for stand; command: walking "
                        "commands over our walk engine, a command of 1 its top speeds)")
    parser.add_argument("--walk-params", metavar="PATH", help="--action-mode command: the walk engine's parameter "
                        "file (default: the shipped envs/walk_params.json)")
    parser.add_argument("--action-repeat", type=int, help="physics steps per decision (default: the policy file's, "
                        "else 1)")
    parser.add_argument("--reward-profile", choices=sorted(REWARD_PROFILES), default="competition",
                        help="reward stored with each transition (default competition, as train.py)")
    parser.add_argument("--max-episode-steps", type=int, help="override the 5000-step time limit")
    parser.add_argument("--sim", choices=SIMS, default="fast", help="simulator: fast (our twin of each task, equal "
                        "to sai_mujoco step for step) or official (default fast)")
    parser.add_argument("--batch-size", type=int, default=8, help="episodes run in lock-step (default 8)")
    parser.add_argument("--device", default="cpu", help="torch device for network policies: cpu, cuda, auto "
                        "(default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return parser


def resolve_policy(args, device: str) -> LoadedPolicy:
    """The --policy to record, with the env settings it acts in; --action-mode / --action-repeat must agree with
    a policy file's (which they default to)."""
    scripted = args.policy in SCRIPTED and args.policy not in ("zero", "random")
    if args.walk_params is not None and args.policy != "striker" and args.action_mode != "command":
        raise UsageError("--walk-params applies to --action-mode command")
    try:
        if scripted:
            mode = args.action_mode or ("command" if args.policy == "striker" else "torque")
            if args.policy == "striker" and mode != "command":
                raise ValueError("the striker outputs walking commands: record it with --action-mode command")
            return scripted_policy(args.policy, action_mode=mode, action_repeat=args.action_repeat or 1,
                                   walk_params=args.walk_params)
        loaded = load_policy(args.policy, device=device)
    except ValueError as exc:
        raise UsageError(f"--policy: {exc}") from None
    if loaded.kind == "scripted":
        raise UsageError(f"--policy {args.policy}: record 'stand', 'striker' or a policy file")
    if loaded.settings.get("outer") is not None:
        raise UsageError(f"--policy: {args.policy}: a residual policy over the striker (its actions correct the "
                         "striker's commands); record --policy striker, or evaluate this checkpoint with "
                         "evaluate.py --model")
    for flag, name, default in (("--action-mode", "action_mode", "torque"), ("--action-repeat", "action_repeat", 1)):
        given, own = getattr(args, name), loaded.settings.get(name, default)
        if given is not None and given != own:
            raise UsageError(f"--policy: {args.policy} acts with {flag} {own}; got {flag} {given}")
    return loaded


def record_options(args, loaded: LoadedPolicy) -> RecordOptions:
    """The recorder's options: the policy's env settings (command mode: its controller, or our walk engine as
    the striker plays it), and the recording flags."""
    mode = loaded.settings.get("action_mode", args.action_mode or "torque")
    command = loaded.settings.get("command")
    if mode == "command" and command is None:
        try:
            command = striker_command_options(args.walk_params)
            command.prepare()
        except ValueError as exc:
            raise UsageError(f"--walk-params: {exc}") from None
    try:
        repeat = loaded.settings.get("action_repeat", args.action_repeat or 1)
        return RecordOptions(action_mode=mode, action_repeat=repeat,
                             reward_profile=args.reward_profile, noise=args.noise, noise_seed=args.noise_seed,
                             max_episode_steps=args.max_episode_steps, batch_size=args.batch_size, sim=args.sim,
                             command=command)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tasks = parse_task_names(args.tasks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    seeds = parse_seeds(args.seeds, "--seeds")
    for flag in ("action_repeat", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.max_episode_steps is not None and args.max_episode_steps < 1:
        raise UsageError(f"--max-episode-steps must be >= 1, got {args.max_episode_steps}")
    out = check_output_file(args.out, "--out")
    torch.set_num_threads(args.threads)
    loaded = resolve_policy(args, str(resolve_device(args.device)))
    options = record_options(args, loaded)
    policy, label = loaded.policy, loaded.label

    print(f"recording {label} on {', '.join(tasks)} x seeds {seeds}, executed-action noise {args.noise}")
    start = time.perf_counter()

    def progress(ep: Episode) -> None:
        end = "terminated" if ep.terminated else "truncated"
        print(f"[{time.perf_counter() - start:7.1f}s] {ep.task} seed {ep.seed}: {ep.length} steps ({end}), "
              f"return {ep.episode_return:+.3f}", flush=True)

    episodes = record_rollouts(policy, tasks, seeds, options, progress)
    arrays = rollout_arrays(episodes, options, label)
    save_npz(out, arrays)  # a failed write is one line (rlcore.fileio.WriteError), the previous file intact
    print(f"wrote {len(arrays['observations'])} transitions of {len(episodes)} episodes to {out} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
