# Copyright (c) OpenMMLab. All rights reserved.
"""Convert a GLIP-T checkpoint to DMFormer's backbone + text encoder.

DMFormer initialises its Swin-T backbone and BERT-base text encoder from
GLIP-T (``glip_tiny_model_o365_goldg_cc_sbu.pth``) and freezes them, as
the official code does. This script writes a *partial* checkpoint with
only ``backbone.*`` and ``language_model.bert.*``; use it as ``load_from``
(the rest of the model keeps its initialisation, and MMEngine logs every
missing key)::

    python tools/model_converters/glip_to_dmformer.py \
        glip_tiny_model_o365_goldg_cc_sbu.pth checkpoints/glip-t_dmformer.pth
    # check it against the model (every other module may be missing)
    python tools/model_converters/glip_to_dmformer.py SRC DST \
        --config configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py

``--format mmdet`` reads MMDetection's converted GLIP checkpoint
(``tools/model_converters/glip_to_mmdet.py`` of mmdet) instead of the
official one. The Swin ``PatchMerging`` weights are re-ordered for mmdet's
``nn.Unfold`` layout in the official format (mmdet's file already is).
"""
import argparse
import os.path as osp
from typing import List, Optional

from dmformer.models.utils.ckpt_convert import (GLIP_FORMATS,
                                                build_model_from_config,
                                                check_state_dict, convert_glip,
                                                load_state_dict_from_file,
                                                save_converted)

# The modules a GLIP-T checkpoint provides; all others may be missing.
PROVIDED = ('backbone', 'language_model.bert')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert GLIP-T weights to DMFormer names.')
    parser.add_argument('src', help='GLIP checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--format',
        choices=GLIP_FORMATS,
        default='official',
        help='naming of the source: official GLIP (maskrcnn_benchmark) or '
        "mmdet's converted GLIP")
    parser.add_argument(
        '--config',
        help='optional DMFormer config: check the converted keys and shapes '
        'against its model (exit 1 on any problem in backbone / '
        'language_model.bert)')
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='fully unpickle the source if weights_only loading fails '
        '(trusted files only)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the conversion; returns the exit status."""
    args = parse_args(argv)
    state_dict = load_state_dict_from_file(args.src, args.trust_pickle)
    converted, report = convert_glip(state_dict, args.format)
    for line in report.summary():
        print(line)
    if args.config is not None:
        model = build_model_from_config(args.config)
        # everything the GLIP checkpoint does not provide may be missing
        allow = [
            key for key in model.state_dict()
            if not any(key.startswith(p + '.') for p in PROVIDED)
        ]
        result = check_state_dict(model, converted, allow_missing=allow)
        print(result.format())
        if not result.ok:
            print('Not written: the converted keys do not fit the model.')
            return 1
    meta = dict(
        converter='tools/model_converters/glip_to_dmformer.py',
        source=osp.basename(args.src),
        source_format=f'glip-{args.format}',
        provides=list(PROVIDED),
        num_tensors=report.num_converted,
        skipped=report.to_meta())
    save_converted(converted, args.dst, meta)
    print(f'saved {report.num_converted} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
