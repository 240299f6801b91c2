"""Train a behaviour-cloning actor on a demonstration file; the weights load 1:1 into train.py --bc-weights.

    python -m bc.train --dataset runs/bc/stand_demos.npz --out runs/bc/bc_actor.pt --algo td3 --epochs 10

The network is the chosen algorithm's actor with the RL run's --net-arch (default 256,256,128, the soccer
default: they must match) and activation; bc/cloning.py says what is trained for each algorithm. Prints the
training and validation loss per epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import torch

from bc.cloning import BCConfig, make_payload, save_bc, train_bc
from bc.dataset import load_demos
from bc.mocap_dataset import ACTION_DIMS
from envs.preprocess import OBS_DIM
from rlcore.cliutil import (
    ArgumentParser,
    UsageError,
    finite_float,
    parse_net_arch,
    resolve_device,
    run_cli,
    seed_type,
)
from rlcore.config import ACTIVATIONS
from rlcore.fileio import check_output_file
from rlcore.registry import ALGORITHM_SPECS, DEFAULT_ALGORITHM


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m bc.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="demonstration .npz (bc.record or bc.build_dataset)")
    parser.add_argument("--out", default="runs/bc_actor.pt", help="output BC payload (default runs/bc_actor.pt)")
    parser.add_argument("--algo", choices=sorted(ALGORITHM_SPECS), default=DEFAULT_ALGORITHM,
                        help=f"whose actor to train (default {DEFAULT_ALGORITHM})")
    parser.add_argument("--action-mode", choices=sorted(ACTION_DIMS),
                        help="action space of the labels (default: the dataset's; must agree with it)")
    parser.add_argument("--net-arch", default="256,256,128",
                        help="hidden sizes; must equal train.py --net-arch (default 256,256,128)")
    parser.add_argument("--activation", choices=ACTIVATIONS,
                        help="hidden activation (default: the algorithm's, relu TD3/SAC, tanh PPO)")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the data (default 30)")
    parser.add_argument("--batch-size", type=int, default=1024, help="minibatch size (default 1024)")
    parser.add_argument("--lr", type=finite_float, default=3e-4, help="Adam learning rate (default 3e-4)")
    parser.add_argument("--val-fraction", type=finite_float, default=0.1,
                        help="share of rows held out for the validation loss (default 0.1)")
    parser.add_argument("--normalize-obs", action="store_true",
                        help="fit an observation normaliser on the data (then train.py needs --normalize-obs)")
    parser.add_argument("--seed", type=seed_type, default=0,
                        help="seed of the split, the init and the batches (default 0)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda (default auto)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared CPU more threads can run far slower)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    net_arch = parse_net_arch(args.net_arch)
    try:
        cfg = BCConfig(algo=args.algo, net_arch=net_arch, activation=args.activation, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
                       normalize_obs=args.normalize_obs, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = check_output_file(args.out, "--out")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    try:
        demos = load_demos(args.dataset, obs_dim=OBS_DIM)
    except ValueError as exc:
        raise UsageError(f"--dataset: {exc}") from None
    action_mode = args.action_mode or demos.action_mode
    if action_mode is None:
        raise UsageError(f"--dataset {args.dataset} does not record its action mode: pass --action-mode")
    if demos.action_mode is not None and demos.action_mode != action_mode:
        raise UsageError(f"--action-mode {action_mode} but the dataset holds {demos.action_mode} actions")
    if demos.actions.shape[1] != ACTION_DIMS[action_mode]:
        raise UsageError(f"{action_mode} actions are {ACTION_DIMS[action_mode]}-dim, the dataset's are "
                         f"{demos.actions.shape[1]}-dim")

    print(f"BC of a {cfg.algo} actor (net {','.join(map(str, cfg.net.net_arch))}, {cfg.net.activation}) on "
          f"{len(demos)} samples of {args.dataset} ({action_mode} actions) on {device}")
    start = time.perf_counter()
    try:
        result = train_bc(demos.observations, demos.actions, cfg, device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    save_bc(out, make_payload(result, cfg, action_mode=action_mode, dataset=str(args.dataset),
                              action_repeat=demos.action_repeat, command=demos.command))
    print(f"wrote {out} in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
