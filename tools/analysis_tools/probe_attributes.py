# Copyright (c) OpenMMLab. All rights reserved.
"""What do the visual features know about the objects? Linear probes of
shape, colour, size and texture on the built-in synthetic data.

A referring expression can only pick its object by an attribute if the
visual features carry that attribute. For every object of every frame this
tool averages the features of the backbone levels and of the first
``neck`` level over the object's pixels (each cell weighted by the share
of it the object covers) and fits one linear classifier per attribute and
feature level on the objects of training videos; the table gives the
accuracy on the objects of the valid videos. ``rgb`` (the mean colour of
the object's pixels) is the baseline every level should beat, ``majority``
the accuracy of always answering the most frequent value.

The attributes are the generator's own (the videos are generated again
from the seed and settings in the data's ``synthetic_rvos_info.json``, so
they are the frames the model was trained on). Only the text-free stages
run (backbone, ``neck``); the checkpoint may hold just those, e.g. from a
pre-training run. Without a checkpoint the weights are the config's
initialisation.

Example::

    python tools/analysis_tools/probe_attributes.py \
        configs/dmformer/dmformer_tiny_synthetic.py \
        work_dirs/quickstart/iter_1050.pth --num-train-videos 200
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

ATTRIBUTES = ('shape', 'colour', 'size', 'texture')
#: an object counts in a frame when it shows this many pixels
MIN_PIXELS = 20


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Linear probes of object attributes on the visual '
        'features (synthetic data).')
    parser.add_argument('config', help='model config')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint (default: initial weights)')
    parser.add_argument(
        '--data-root',
        default='data/synthetic-rvos',
        help='synthetic data written by make_synthetic_rvos.py')
    parser.add_argument('--num-train-videos', type=int, default=200)
    parser.add_argument(
        '--steps', type=int, default=400, help='probe optimisation steps')
    parser.add_argument('--json', help='write the accuracies to this file')
    return parser.parse_args(argv)


def generator_settings(data_root: str) -> dict:
    """The generator arguments stored with the data."""
    path = osp.join(data_root, 'synthetic_rvos_info.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: probe_attributes.py needs data written by '
            'tools/dataset_converters/make_synthetic_rvos.py')
    with open(path) as f:
        info = json.load(f)
    args = info.get('args', {})
    missing = [
        k for k in ('seed', 'num_train', 'num_valid', 'num_frames', 'size',
                    'min_objects', 'max_objects') if k not in args
    ]
    if missing or args.get('layout', 'ytvos') != 'ytvos':
        raise ValueError(f'{path}: not a Ref-YouTube-VOS-layout synthetic '
                         f'dataset (missing {missing or ["layout"]})')
    return args


def pool_objects(feat: torch.Tensor, id_maps: torch.Tensor,
                 obj_id: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average a feature map over one object's pixels, frame by frame.

    Args:
        feat (Tensor): (T, C, h, w), covering the (T, H, W) ``id_maps``
            (possibly padded at the bottom/right).
        id_maps (Tensor): Object id per pixel, (T, H, W).
        obj_id (int): The object.

    Returns:
        tuple[Tensor, Tensor]: (T, C) pooled features and the (T,) bool
        frames where the object shows at least ``MIN_PIXELS`` pixels.
    """
    mask = (id_maps == obj_id).float()[:, None]
    h, w = feat.shape[-2:]
    stride_h = -(-mask.shape[-2] // h)
    stride_w = -(-mask.shape[-1] // w)
    mask = F.pad(mask, (0, w * stride_w - mask.shape[-1], 0,
                        h * stride_h - mask.shape[-2]))
    weights = F.avg_pool2d(mask, (stride_h, stride_w))  # (T, 1, h, w)
    pooled = (feat * weights).flatten(2).sum(2) / weights.flatten(1).sum(
        1, keepdim=True).clamp(min=1e-6)
    visible = mask.flatten(1).sum(1) >= MIN_PIXELS
    return pooled, visible


@torch.no_grad()
def collect(model, settings: dict, split_idx: int,
            num_videos: int) -> Tuple[Dict[str, torch.Tensor], Dict[str,
                                                                    list]]:
    """Pooled features and attributes of every visible object-frame.

    Returns:
        tuple[dict, dict]: feature name -> (N, C) Tensor, and attribute ->
        N values.
    """
    from dmformer.datasets.synthetic_rvos import generate_video
    pre = model.data_preprocessor
    feats: Dict[str, List[torch.Tensor]] = {}
    labels: Dict[str, list] = {a: [] for a in ATTRIBUTES}
    for i in range(num_videos):
        rng = np.random.default_rng([settings['seed'], split_idx, i])
        video = generate_video(rng, settings['num_frames'], settings['size'],
                               settings['min_objects'],
                               settings['max_objects'])
        frames = torch.from_numpy(np.stack(video['frames'])).permute(
            0, 3, 1, 2).float()  # RGB, (T, 3, H, W)
        x = (frames - pre.mean) / pre.std
        div = pre.pad_size_divisor
        x = F.pad(x, (0, -x.shape[-1] % div, 0, -x.shape[-2] % div))
        levels = list(model.backbone(x))
        neck = model.neck(
            tuple(levels[-model.num_backbone_outs_to_proj:]))[0]
        named = dict(rgb=frames / 255.)
        named.update({f'backbone {k}': f for k, f in enumerate(levels)})
        named['neck 0'] = neck
        id_maps = torch.from_numpy(np.asarray(video['masks'])).long()
        for obj in video['objects']:
            vis = None
            for name, feat in named.items():
                pooled, visible = pool_objects(feat, id_maps, obj['obj_id'])
                vis = visible if vis is None else vis
                feats.setdefault(name, []).append(pooled[vis])
            for a in ATTRIBUTES:
                labels[a] += [obj[a]] * int(vis.sum())
    return {k: torch.cat(v) for k, v in feats.items()}, labels


def fit_probe(x_train: torch.Tensor, y_train: torch.Tensor,
              x_test: torch.Tensor, y_test: torch.Tensor, num_classes: int,
              steps: int = 400, seed: int = 0) -> float:
    """Test accuracy of a linear softmax classifier fitted (Adam, standard-
    ised inputs) on the training set."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-5
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    gen = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(x_train.shape[1], num_classes)
    with torch.no_grad():
        linear.weight.normal_(0, 0.01, generator=gen)
        linear.bias.zero_()
    opt = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(linear(x_train), y_train).backward()
        opt.step()
    with torch.no_grad():
        return (linear(x_test).argmax(1) == y_test).float().mean().item()


def probe(train: Tuple[dict, dict], test: Tuple[dict, dict],
          steps: int = 400) -> Dict[str, Dict[str, float]]:
    """Accuracy per feature and attribute, plus the ``majority`` row."""
    results: Dict[str, Dict[str, float]] = {}
    for attr in ATTRIBUTES:
        values = sorted(set(train[1][attr]) | set(test[1][attr]))
        index = {v: k for k, v in enumerate(values)}
        y_train = torch.tensor([index[v] for v in train[1][attr]])
        y_test = torch.tensor([index[v] for v in test[1][attr]])
        for name in train[0]:
            results.setdefault(name, {})[attr] = fit_probe(
                train[0][name], y_train, test[0][name], y_test, len(values),
                steps)
        counts = np.bincount(y_test.numpy(), minlength=len(values))
        results.setdefault('majority', {})[attr] = float(
            counts.max() / max(counts.sum(), 1))
    return results


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    width = max(len(k) for k in results)
    header = '  '.join(f'{a:>7}' for a in ATTRIBUTES)
    lines = [f'{"feature":<{width}}  {header}']
    for name, accs in results.items():
        lines.append(f'{name:<{width}}  ' +
                     '  '.join(f'{accs[a]:7.2f}' for a in ATTRIBUTES))
    return '\n'.join(lines)


def build_model(config: str, checkpoint: Optional[str]):
    """The config's model (initial weights) with the checkpoint's
    backbone and ``neck`` weights, in eval mode."""
    from dmformer.apis import init_model
    model = init_model(config, None, device='cpu').eval()
    if checkpoint is not None:
        from dmformer.engine import read_checkpoint
        state = read_checkpoint(checkpoint)
        state = state.get('state_dict', state)
        from dmformer.models.utils.ckpt_convert import upgrade_legacy_keys
        state = dict(state)
        upgrade_legacy_keys(state)  # checkpoints with the old module names
        wanted = [
            k for k in model.state_dict()
            if k.startswith(('backbone.', 'neck.'))
        ]
        missing = [k for k in wanted if k not in state]
        if missing:
            raise ValueError(f'{checkpoint} lacks {len(missing)} backbone/'
                             f'neck weights of {config} (e.g. {missing[0]})')
        model.load_state_dict({k: state[k] for k in wanted}, strict=False)
    return model


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    from dmformer.utils import register_all_modules
    register_all_modules()
    settings = generator_settings(args.data_root)
    num_train = min(args.num_train_videos, settings['num_train'])
    model = build_model(args.config, args.checkpoint)
    torch.manual_seed(0)
    train = collect(model, settings, 0, num_train)
    test = collect(model, settings, 1, settings['num_valid'])
    results = probe(train, test, args.steps)
    print('linear-probe accuracy on the valid objects '
          f'({len(test[1]["shape"])} object-frames; fitted on '
          f'{len(train[1]["shape"])} from '
          f'{num_train} training videos)')
    print(format_table(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
