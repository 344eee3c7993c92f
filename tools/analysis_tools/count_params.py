# Copyright (c) OpenMMLab. All rights reserved.
"""Count the parameters of a config's model, per top-level component.

Example:
    python tools/analysis_tools/count_params.py \
        configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py
"""
import argparse
from collections import OrderedDict
from typing import Dict, Tuple

import torch.nn as nn
from mmengine.config import Config, DictAction


def count_parameters(module: nn.Module) -> Tuple[int, int]:
    """Return ``(trainable, total)`` parameter counts of a module."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return trainable, total


def component_table(model: nn.Module) -> Dict[str, Tuple[int, int]]:
    """``{child name: (trainable, total)}`` for every direct child."""
    table = OrderedDict()
    for name, child in model.named_children():
        table[name] = count_parameters(child)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    from dmformer.registry import MODELS
    from dmformer.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model)

    print(f'{"component":<22}{"trainable":>14}{"total":>14}')
    for name, (trainable, total) in component_table(model).items():
        print(f'{name:<22}{trainable:>14,}{total:>14,}')
    trainable, total = count_parameters(model)
    print(f'{"TOTAL":<22}{trainable:>14,}{total:>14,}')
    print(f'trainable {trainable / 1e6:.3f} M, total {total / 1e6:.3f} M')


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
