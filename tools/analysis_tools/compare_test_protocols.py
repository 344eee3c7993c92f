# Copyright (c) OpenMMLab. All rights reserved.
"""Measure what the test-time protocol switches change in a checkpoint's
predictions.

Three switches separate our test protocol from the official
``inference_ytvos.py``:

- padding: ``model.data_preprocessor.test_pad_size_divisor`` (ours 32, the
  official code runs the clip unpadded: 1);
- mask upsampling: ``model.bbox_head.test_cfg.mask_upsample`` (ours
  ``'two_step'``: x4 to the padded input, crop, resize to the frame size;
  official ``'one_step'``: the stride-4 logits straight to the frame size);
- frame resize: the ``backend`` of every ``VideoRandomResize`` of the test
  pipeline (ours ``'cv2'``, official PIL bilinear: ``'pillow'``).

Every sample of the test split is predicted under each protocol given as
``PAD:UPSAMPLE:BACKEND`` (default: ours, each switch alone, padding +
upsampling together, and all three: the official protocol). The first
protocol is the reference. The table gives, per protocol, J&F / J / F
when the split has ground truth (as ``RVOSJFMetric``: DAVIS J and F per
frame, mean over the frames of an expression, then over expressions), and
its agreement with the reference over all frames at the original size:
mean and minimum (over expressions) IoU of the binary masks (1 when both
are empty), the share of pixels whose label differs, and the largest
absolute difference of the mask probabilities.

Examples::

    python tools/analysis_tools/compare_test_protocols.py \\
        configs/dmformer/dmformer_tiny_synthetic_attr-pretrained.py \\
        work_dirs/quickstart/iter_1050.pth --data-root data/synthetic-rvos
    # the paper model on the first 20 Ref-YouTube-VOS valid expressions
    # (no public ground truth: agreement only)
    python tools/analysis_tools/compare_test_protocols.py \\
        configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py CKPT \\
        --max-samples 20 --protocols 32:two_step:cv2 1:one_step:pillow
"""
import argparse
import copy
import json
from collections import defaultdict
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence

import numpy as np
import torch

#: ours, each switch alone, padding + upsampling, the official protocol
DEFAULT_PROTOCOLS = ('32:two_step:cv2', '1:two_step:cv2', '32:one_step:cv2',
                     '32:two_step:pillow', '1:one_step:cv2',
                     '1:one_step:pillow')
UPSAMPLE_MODES = ('two_step', 'one_step')
BACKENDS = ('cv2', 'pillow')


class Protocol(NamedTuple):
    """One test-time protocol."""
    pad: int
    upsample: str
    backend: str

    @property
    def name(self) -> str:
        return f'{self.pad}:{self.upsample}:{self.backend}'


def parse_protocol(spec: str) -> Protocol:
    """``'PAD:UPSAMPLE:BACKEND'`` (e.g. ``'1:one_step:pillow'``) to a
    :class:`Protocol`.

    Raises:
        ValueError: A malformed spec or an unknown value.
    """
    parts = spec.split(':')
    if len(parts) != 3:
        raise ValueError(f'protocol {spec!r}: expected PAD:UPSAMPLE:BACKEND, '
                         "e.g. '1:one_step:pillow'")
    pad, upsample, backend = parts
    if not pad.isdigit() or int(pad) < 1:
        raise ValueError(f'protocol {spec!r}: PAD must be a positive int')
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f'protocol {spec!r}: UPSAMPLE must be one of '
                         f'{UPSAMPLE_MODES}')
    if backend not in BACKENDS:
        raise ValueError(f'protocol {spec!r}: BACKEND must be one of '
                         f'{BACKENDS}')
    return Protocol(int(pad), upsample, backend)


def set_resize_backend(pipeline: List, backend: str) -> int:
    """Set ``backend`` on every ``VideoRandomResize`` of a pipeline config,
    nested ones (``RandomChoice`` branches, ...) included; in place.

    Returns:
        int: How many transforms were changed.
    """

    def visit(node) -> int:
        if isinstance(node, dict):
            count = 0
            if node.get('type') == 'VideoRandomResize':
                node['backend'] = backend
                count += 1
            return count + sum(visit(v) for v in node.values())
        if isinstance(node, (list, tuple)):
            return sum(visit(v) for v in node)
        return 0

    return visit(pipeline)


def mask_agreement(masks: np.ndarray, ref_masks: np.ndarray,
                   probs: Optional[np.ndarray],
                   ref_probs: Optional[np.ndarray]) -> Dict[str, float]:
    """Agreement of one expression's predictions with the reference's.

    Args:
        masks, ref_masks (np.ndarray): Binary masks, bool (T, H, W).
        probs, ref_probs (np.ndarray, optional): Mask probabilities, float
            (T, H, W).

    Returns:
        dict: ``iou`` (of all the frames' pixels together; 1 when both are
        empty), ``flipped`` (share of pixels with another label) and
        ``max_prob_diff`` (NaN without probabilities).
    """
    if masks.shape != ref_masks.shape:
        raise ValueError(f'masks of shape {masks.shape} vs reference '
                         f'{ref_masks.shape}')
    union = np.logical_or(masks, ref_masks).sum()
    inter = np.logical_and(masks, ref_masks).sum()
    diff = float('nan')
    if probs is not None and ref_probs is not None:
        diff = float(np.abs(probs - ref_probs).max())
    return dict(
        iou=float(inter / union) if union else 1.0,
        flipped=float((masks != ref_masks).mean()),
        max_prob_diff=diff)


def summarize(protocols: Sequence[Protocol], jf_records: Dict[str, list],
              agreement: Dict[str, List[dict]]) -> Dict[str, dict]:
    """Per-protocol J&F (when scored) and agreement summary.

    Args:
        protocols (Sequence[Protocol]): In table order; the first is the
            reference.
        jf_records (dict[str, list]): Protocol name -> records for
            :func:`dmformer.evaluation.metrics.utils.summarize_jf` (empty
            when the split has no ground truth).
        agreement (dict[str, list[dict]]): Protocol name -> one
            :func:`mask_agreement` per expression.

    Returns:
        dict[str, dict]: Protocol name -> ``J&F``, ``J``, ``F`` (percent,
        NaN without ground truth), ``mean_iou``, ``min_iou``, ``flipped``
        (mean share of pixels), ``max_prob_diff`` and ``num_samples``.
    """
    from dmformer.evaluation.metrics.utils import summarize_jf
    out = {}
    for proto in protocols:
        row = {'J&F': float('nan'), 'J': float('nan'), 'F': float('nan')}
        records = jf_records.get(proto.name)
        if records:
            jf = summarize_jf(records)
            row.update({
                'J&F': jf['JF'] * 100,
                'J': jf['J'] * 100,
                'F': jf['F'] * 100
            })
        agree = agreement[proto.name]
        row.update(
            mean_iou=float(np.mean([a['iou'] for a in agree])),
            min_iou=float(np.min([a['iou'] for a in agree])),
            flipped=float(np.mean([a['flipped'] for a in agree])),
            max_prob_diff=float(np.max([a['max_prob_diff']
                                        for a in agree])),
            num_samples=len(agree))
        out[proto.name] = row
    return out


def format_table(summary: Dict[str, dict]) -> str:
    """A fixed-width table of :func:`summarize`'s output; the first row is
    the reference."""
    header = (f'{"protocol (pad:upsample:resize)":<32}{"J&F":>7}{"J":>7}'
              f'{"F":>7}{"IoU mean":>10}{"IoU min":>9}{"flipped":>10}'
              f'{"max|dp|":>9}')
    lines = [header, '-' * len(header)]
    for i, (name, row) in enumerate(summary.items()):
        label = name + (' (ref)' if i == 0 else '')
        lines.append(f'{label:<32}{row["J&F"]:>7.2f}{row["J"]:>7.2f}'
                     f'{row["F"]:>7.2f}{row["mean_iou"]:>10.4f}'
                     f'{row["min_iou"]:>9.4f}{row["flipped"]:>10.2e}'
                     f'{row["max_prob_diff"]:>9.4f}')
    return '\n'.join(lines)


def _run_order(protocols: Sequence[Protocol]) -> List[Protocol]:
    """Protocols grouped by backend, then padding: consecutive calls on
    the same frames reuse the detector's visual cache."""
    return sorted(
        protocols,
        key=lambda p: (BACKENDS.index(p.backend), p.pad,
                       UPSAMPLE_MODES.index(p.upsample)))


def compare_protocols(model: torch.nn.Module,
                      datasets: Dict[str, object],
                      protocols: Sequence[Protocol],
                      indices: Iterable[int]) -> Dict[str, dict]:
    """Predict the samples under every protocol and summarise.

    Args:
        model (nn.Module): A :class:`DMFormer` in eval mode; its
            preprocessor and head settings are changed while it runs and
            restored afterwards.
        datasets (dict[str, Dataset]): Test dataset per resize backend
            used by ``protocols``, all with the same samples.
        protocols (Sequence[Protocol]): The first is the reference.
        indices (Iterable[int]): Dataset indices to predict.

    Returns:
        dict[str, dict]: See :func:`summarize`.
    """
    from mmengine.dataset import pseudo_collate

    from dmformer.evaluation.metrics.utils import (get_frame_ids, get_masks,
                                                   score_masks)
    pre, head = model.data_preprocessor, model.bbox_head
    saved = pre.test_pad_size_divisor, dict(head.test_cfg)
    head.test_cfg['return_mask_probs'] = True
    ref = protocols[0]
    jf_records: Dict[str, list] = defaultdict(list)
    agreement: Dict[str, List[dict]] = defaultdict(list)
    try:
        for idx in indices:
            batches = {b: pseudo_collate([ds[idx]])
                       for b, ds in datasets.items()}
            names = {(str(s.metainfo.get('video_id')),
                      str(s.metainfo.get('exp_id')))
                     for b in batches.values() for s in b['data_samples']}
            if len(names) != 1:
                raise ValueError(f'sample {idx} differs between the '
                                 f'datasets: {sorted(names)}')
            preds = {}
            for proto in _run_order(protocols):
                pre.test_pad_size_divisor = proto.pad
                head.test_cfg['mask_upsample'] = proto.upsample
                batch = copy.deepcopy(batches[proto.backend])
                with torch.no_grad():
                    sample = model.test_step(batch)[0]
                pred = sample.pred_instances
                masks = pred.masks.cpu().numpy()
                probs = pred.mask_probs.float().cpu().numpy() \
                    if 'mask_probs' in pred else None
                preds[proto.name] = masks, probs
                gt = get_masks(sample, 'gt_instances')
                if gt is not None:
                    record = dict(
                        video_id=str(sample.metainfo.get('video_id')),
                        exp_id=str(sample.metainfo.get('exp_id')),
                        frame_ids=get_frame_ids(sample, masks.shape[0]))
                    record.update(score_masks(sample, masks, gt))
                    jf_records[proto.name].append(record)
            ref_masks, ref_probs = preds[ref.name]
            for proto in protocols:
                masks, probs = preds[proto.name]
                agreement[proto.name].append(
                    mask_agreement(masks, ref_masks, probs, ref_probs))
    finally:
        pre.test_pad_size_divisor = saved[0]
        head.test_cfg.clear()
        head.test_cfg.update(saved[1])
    return summarize(protocols, jf_records, agreement)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Compare test-time protocols (padding, mask upsampling, '
        'frame resize backend) of a DMFormer checkpoint')
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--data-root',
        help="test on this data root instead of the config's (as "
        'tools/test.py)')
    parser.add_argument(
        '--protocols',
        nargs='+',
        default=list(DEFAULT_PROTOCOLS),
        help='PAD:UPSAMPLE:BACKEND per protocol, the first is the reference '
        f'(default: {" ".join(DEFAULT_PROTOCOLS)})')
    parser.add_argument(
        '--max-samples',
        type=int,
        help='only the first N samples of the test split')
    parser.add_argument('--out', help='also write the summary to this JSON')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config')
    args = parser.parse_args(argv)
    try:
        args.protocols = [parse_protocol(p) for p in args.protocols]
    except ValueError as e:
        parser.error(str(e))
    if len(set(args.protocols)) != len(args.protocols):
        parser.error('a protocol is given twice')
    if args.max_samples is not None and args.max_samples < 1:
        parser.error('--max-samples must be positive')
    return args


def run(argv: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    """Parse the command line, compare the protocols and print the table.

    Returns:
        dict[str, dict]: See :func:`summarize`.
    """
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from dmformer.apis import init_model
    from dmformer.registry import DATASETS
    from dmformer.utils import reroot_data
    cfg = Config.fromfile(args.config)
    if args.data_root is not None:
        reroot_data(cfg, args.data_root, phases=('test', ))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = init_model(cfg, args.checkpoint)
    init_default_scope(cfg.get('default_scope', 'dmformer'))
    datasets = {}
    for backend in sorted({p.backend for p in args.protocols}):
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        if not set_resize_backend(dataset_cfg.get('pipeline', []), backend):
            raise ValueError(f'{args.config}: the test pipeline has no '
                             'VideoRandomResize to switch')
        datasets[backend] = DATASETS.build(dataset_cfg)
    num = len(next(iter(datasets.values())))
    if args.max_samples is not None:
        num = min(num, args.max_samples)
    summary = compare_protocols(model, datasets, args.protocols, range(num))
    print(f'{num} samples of {args.config} with {args.checkpoint}')
    print(format_table(summary))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(summary, f, indent=2)
    return summary


def main() -> None:
    run()


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
