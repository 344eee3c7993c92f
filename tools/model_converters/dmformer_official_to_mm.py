# Copyright (c) OpenMMLab. All rights reserved.
"""Convert an official DMFormer (``DMMI``) checkpoint to this codebase.

The official code (gaomingqi/DMFormer) saves ``{'model': state_dict,
'optimizer': ..., 'args': Namespace, ...}``; only ``model`` is converted.
The key map (:mod:`dmformer.models.utils.ckpt_convert`) renames e.g.::

    backbone.0.body.layers.i.blocks.j.mlp.fc1   -> backbone.stages.i.blocks.j.ffn.layers.0.0
    text_encoder.model.*                        -> language_model.bert.*
    resizer.*                                   -> language_model.resizer.*
    subject_perceptron_1 / _2                   -> subject_head.encoder_layer / fc_cls
    vlfuse_list_context.i.multihead_attn        -> encoder.context_branch.vl_fusions.i.multihead_attn
    visionlayer_list_context.i.{norm1,linear1,linear2,norm2}
                                                -> encoder.context_branch.encoder_layers.i.{norms.0,ffn.layers.0.0,ffn.layers.1,norms.1}
    bertlayer_list_context.i / level_embed_context / resizer_context_{v,l}
                                                -> encoder.context_branch.{text_layers.i,level_embed,{vision,text}_resizer}
    input_proj.{0,1,2}.{0,1} / input_proj.3.{0,1}
                                                -> neck.convs.l.{conv,gn} / neck.extra_convs.0.{conv,gn}
    query_embed / transformer.reference_points  -> bbox_head.query_embedding / bbox_head.reference_points_fc
    transformer.decoder.layers.i.{self_attn,norm2,cross_attn,norm1,linear1,linear2,norm3}
                                                -> bbox_head.decoder.layers.i.{self_attn.attn,norms.0,cross_attn,norms.1,ffn.layers.0.0,ffn.layers.1,norms.2}
    class_embed.i / bbox_embed.i.layers.j       -> bbox_head.cls_branches.i / bbox_head.reg_branches.i.layers.j
    pixel_decoder.{adapter,layer}_s(.norm)      -> bbox_head.pixel_decoder.{lateral,output}_convs.(s-1).{conv,gn}
    pixel_decoder.cross_attn_s.{self_attn,multihead_attn,linear1,linear2,norm1..3}
                                                -> bbox_head.pixel_decoder.vl_blocks.(s-1).{self_attn,cross_attn.attn,ffn.layers.0.0,ffn.layers.1,norms.0..2}
    controller.layers.j                         -> bbox_head.mask_head.controller.layers.j

(the subject branch likewise). The Swin ``PatchMerging`` weights are
re-ordered for mmdet's ``nn.Unfold`` layout; the duplicated
``transformer.decoder.bbox_embed.*`` entries are checked equal to
``bbox_embed.*`` and dropped.

HONEST NOTE: no official checkpoint was available offline. The conversion
was validated on synthetic round trips: official-style state dicts built
from a randomly initialised DMFormer with the exact inverse mapping (names
checked against the official source), converted back and compared key by
key and value by value, with no missing or unexpected key. The functional
equivalence of the re-ordered PatchMerging weights is tested numerically.

Example::

    python tools/model_converters/dmformer_official_to_mm.py \
        dmformer_official.pth checkpoints/dmformer_swin-t_mm.pth \
        --config configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py
"""  # noqa: E501
import argparse
import os.path as osp
from typing import List, Optional

from dmformer.models.utils.ckpt_convert import (build_model_from_config,
                                                check_state_dict,
                                                convert_dmformer_official,
                                                load_state_dict_from_file,
                                                save_converted)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official DMFormer checkpoint.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--config',
        help='optional config: check that the converted checkpoint fits its '
        'model exactly (no missing / unexpected / mismatched key)')
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
    converted, report = convert_dmformer_official(state_dict)
    for line in report.summary():
        print(line)
    if args.config is not None:
        model = build_model_from_config(args.config)
        result = check_state_dict(model, converted)
        print(result.format())
        if not result.ok:
            print('Not written: the converted keys do not fit the model.')
            return 1
    meta = dict(
        converter='tools/model_converters/dmformer_official_to_mm.py',
        source=osp.basename(args.src),
        source_format='dmformer-official',
        num_tensors=report.num_converted,
        skipped=report.to_meta())
    save_converted(converted, args.dst, meta)
    print(f'saved {report.num_converted} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
