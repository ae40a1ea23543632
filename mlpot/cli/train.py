"""Train a model from a YAML config.

  mlpot train CONFIG.yaml [--set section.key=value ...]
  mlpot train --demo                   the packaged demo: EMT Cu-Au, a few minutes on 2 cores
  mlpot train CONFIG.yaml --init-from PARENT.model   fine-tune a trained potential
  torchrun --standalone --nproc-per-node N -m mlpot.cli.main train CONFIG.yaml   N processes (DDP)

Running the same command again continues an interrupted run from its last checkpoint.
"""

import argparse
from importlib import resources
from pathlib import Path

from mlpot.errors import MLPotError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config with sections data, model, training, output")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    parser.add_argument("--demo", action="store_true", help="train the packaged demo potential")
    parser.add_argument("--init-from", metavar="MODEL", help="fine-tune this trained potential (same as --set model.init_from=MODEL)")


def demo_config_path() -> Path:
    return Path(str(resources.files("mlpot") / "data" / "demo" / "config.yaml"))


def run(args: argparse.Namespace) -> int:
    from mlpot.train import distributed
    from mlpot.train.committee import train_committee
    from mlpot.train.config import apply_overrides, parse_config, read_yaml
    from mlpot.train.trainer import Trainer

    if args.demo == bool(args.config):
        raise MLPotError("give a config file or --demo (not both)")
    path = demo_config_path() if args.demo else Path(args.config)
    overrides = list(args.set) + ([f"model.init_from={Path(args.init_from).resolve()}"] if args.init_from else [])
    raw = apply_overrides(read_yaml(path), overrides)
    if args.demo:
        raw.setdefault("output", {}).setdefault("directory", "mlpot-demo")
    config = parse_config(raw, base_dir=path.parent)
    group = distributed.start(config.training.device)
    try:
        if config.training.committee > 1:
            train_committee(config, raw, group)
        else:
            Trainer(config, raw, group).run()
    finally:
        distributed.stop(group)
    return 0
