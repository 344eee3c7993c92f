# Copyright (c) OpenMMLab. All rights reserved.
"""Check a checkpoint's keys and shapes against a config's model.

Prints the missing keys (grouped by top-level module, with counts), the
unexpected keys and the shape mismatches, and exits with status 1 when there
is an unexpected key, a shape mismatch, or a missing key outside the
prefixes given with ``--allow-missing``. Keys are revised like MMEngine's
``load_checkpoint`` does by default (a leading ``module.`` is removed).

Example (a converted GLIP-T checkpoint only provides the backbone and the
BERT weights)::

    python tools/model_converters/check_checkpoint_keys.py \
        configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py \
        checkpoints/glip-t_dmformer.pth \
        --allow-missing language_model.resizer neck encoder bbox_head \
        subject_head
"""
import argparse
import re
from collections import OrderedDict
from typing import List, Optional

from mmengine.config import DictAction

from dmformer.models.utils.ckpt_convert import (build_model_from_config,
                                                check_state_dict,
                                                load_state_dict_from_file)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check checkpoint keys/shapes against a model.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--allow-missing',
        nargs='+',
        default=[],
        metavar='PREFIX',
        help='key prefixes that may be missing from the checkpoint')
    parser.add_argument(
        '--max-keys',
        type=int,
        default=20,
        help='example keys printed per category')
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='fully unpickle the checkpoint if weights_only loading fails '
        '(trusted files only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the check; returns the exit status (0 = OK)."""
    args = parse_args(argv)
    state_dict = load_state_dict_from_file(args.checkpoint,
                                           args.trust_pickle)
    # the default `revise_keys` of mmengine.runner.load_checkpoint
    state_dict = OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in state_dict.items())
    model = build_model_from_config(args.config, args.cfg_options)
    result = check_state_dict(model, state_dict, args.allow_missing)
    print(result.format(max_keys=args.max_keys))
    return 0 if result.ok else 1


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
