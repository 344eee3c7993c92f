# Copyright (c) OpenMMLab. All rights reserved.
"""Pre-train a config's backbone on per-pixel attribute segmentation of
synthetic frames (the tiny model's stand-in for a pre-trained backbone).

The paper model starts from GLIP's Swin-T, which already knows shapes,
colours and textures; the tiny synthetic model has no pre-trained backbone.
This tool generates frames with the synthetic data's generator under its
own seed (not the seed of the training or held-out data), and trains the
config's backbone with a small FPN-style classifier to label every pixel
with the shape, colour, size and texture of the object on it (or
background). It writes ``{'state_dict': {'backbone.<name>': ...}}``, to
load with::

    model = dict(backbone=dict(frozen=True, init_cfg=dict(
        type='Pretrained', checkpoint='OUT.pth', prefix='backbone.')))

Run V of the synthetic recipe's log (docs/en/notes/synthetic_recipe.md)
used the defaults (2,500 steps)::

    python tools/misc/pretrain_attribute_backbone.py \
        configs/dmformer/dmformer_tiny_synthetic.py work_dirs/attr_swin.pth
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: seeds of the built-in data (training/valid split, held-out split)
DATA_SEEDS = (0, 1234)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pre-train a backbone on per-pixel shape / colour / '
        'size / texture segmentation of synthetic frames.')
    parser.add_argument('config', help='model config (its backbone)')
    parser.add_argument('out', help='checkpoint to write')
    parser.add_argument('--steps', type=int, default=2500)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument(
        '--num-videos',
        type=int,
        default=1200,
        help='generated videos (5 frames used from each)')
    parser.add_argument(
        '--seed',
        type=int,
        default=7,
        help=f'generator seed; the data seeds {DATA_SEEDS} are refused')
    parser.add_argument('--size', type=int, default=112, help='frame size')
    parser.add_argument('--log-interval', type=int, default=250)
    return parser.parse_args(argv)


def attribute_values() -> Dict[str, List[str]]:
    """Attribute -> its values, in label order (label 0 = background)."""
    from dmformer.datasets.synthetic_rvos import COLOURS, SHAPES, TEXTURES
    return dict(
        shape=list(SHAPES),
        colour=list(COLOURS),
        size=['small', 'big'],
        texture=list(TEXTURES))


def make_frames(seed: int, split: int, num_videos: int,
                size: int) -> Tuple[Tensor, Tensor]:
    """Frames (N, 3, H, W) float RGB in 0-255, JPEG round-tripped as the
    data's frames are, and labels (N, 4, H, W) long, one map per
    attribute."""
    from dmformer.datasets.synthetic_rvos import JPEG_QUALITY, generate_video
    attrs = attribute_values()
    frames, labels = [], []
    for i in range(num_videos):
        video = generate_video(
            np.random.default_rng([seed, split, i]), 10, size, 2, 4)
        ids = np.asarray(video['masks'])
        label = np.zeros((len(attrs), ) + ids.shape, np.int64)
        for obj in video['objects']:
            on_obj = ids == obj['obj_id']
            for k, (attr, values) in enumerate(attrs.items()):
                label[k][on_obj] = values.index(obj[attr]) + 1
        for t in range(0, len(video['frames']), 2):
            bgr = np.ascontiguousarray(video['frames'][t][..., ::-1])
            _, buf = cv2.imencode('.jpg', bgr,
                                  [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            frames.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
            labels.append(label[:, t])
    x = torch.from_numpy(np.ascontiguousarray(np.stack(frames)))
    return x.permute(0, 3, 1, 2).float(), torch.from_numpy(np.stack(labels))


class AttributeHead(nn.Module):
    """Every backbone level -> 1x1 conv, upsampled to the first level and
    summed, 3x3 conv + GN + ReLU, then one logit map per attribute value
    (plus background) for every attribute."""

    def __init__(self, in_channels: Sequence[int],
                 num_classes: Sequence[int], channels: int = 64) -> None:
        super().__init__()
        self.num_classes = list(num_classes)
        self.laterals = nn.ModuleList(
            [nn.Conv2d(c, channels, 1) for c in in_channels])
        self.fuse = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(16, channels), nn.ReLU(inplace=True))
        self.cls = nn.Conv2d(channels, sum(self.num_classes), 1)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        size = feats[0].shape[-2:]
        x = sum(
            F.interpolate(
                lat(f), size=size, mode='bilinear', align_corners=False)
            for lat, f in zip(self.laterals, feats))
        return list(self.cls(self.fuse(x)).split(self.num_classes, 1))


def losses_and_accuracy(logits: List[Tensor],
                        labels: Tensor) -> Tuple[Tensor, List[float]]:
    """Cross-entropy per attribute (object pixels weighted 5x) and the
    accuracy on object pixels."""
    total, accs = 0., []
    for k, logit in enumerate(logits):
        logit = F.interpolate(
            logit, size=labels.shape[-2:], mode='bilinear',
            align_corners=False)
        target = labels[:, k]
        on_obj = target > 0
        weight = 1. + 4. * on_obj.float()
        loss = F.cross_entropy(logit, target, reduction='none')
        total = total + (loss * weight).sum() / weight.sum()
        right = (logit.argmax(1) == target) & on_obj
        accs.append(right.sum().item() / max(on_obj.sum().item(), 1))
    return total, accs


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    if args.steps < 1:
        raise SystemExit(f'--steps must be at least 1, got {args.steps}')
    if args.seed in DATA_SEEDS:
        raise SystemExit(f'--seed {args.seed}: that is the seed of the '
                         'built-in data; pick another one')
    from mmengine.config import Config

    from dmformer.registry import MODELS
    from dmformer.utils import register_all_modules, tune_glibc_malloc
    tune_glibc_malloc()
    register_all_modules()
    if not osp.isfile(args.config):
        raise SystemExit(f'{args.config}: no such config file')
    cfg = Config.fromfile(args.config)
    torch.manual_seed(0)
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg['frozen'] = False
    backbone_cfg.pop('init_cfg', None)
    backbone = MODELS.build(backbone_cfg)
    pre = cfg.model.data_preprocessor
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    divisor = pre.get('pad_size_divisor', 1)

    def pad(t: Tensor) -> Tensor:
        h, w = t.shape[-2:]
        return F.pad(t, (0, -w % divisor, 0, -h % divisor))

    with torch.no_grad():
        channels = [
            f.shape[1]
            for f in backbone(pad(torch.zeros(1, 3, args.size, args.size)))
        ]
    attrs = attribute_values()
    head = AttributeHead(channels, [len(v) + 1 for v in attrs.values()])

    start = time.time()
    x_train, y_train = make_frames(args.seed, 0, args.num_videos, args.size)
    x_val, y_val = make_frames(args.seed, 1, max(args.num_videos // 30, 1),
                               args.size)
    print(f'{len(x_train)} training / {len(x_val)} held-out frames '
          f'(generator seed {args.seed}) in {time.time() - start:.0f} s',
          flush=True)

    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    # 100 warm-up steps, learning rate / 10 for the last 20%
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1., (i + 1) / 100) *
        (0.1 if i > 0.8 * args.steps else 1.))

    def forward(x: Tensor) -> List[Tensor]:
        return head(list(backbone((x - mean) / std)))

    def validate() -> List[float]:
        backbone.eval()
        head.eval()
        with torch.no_grad():
            _, accs = losses_and_accuracy(
                forward(pad(x_val)), pad(y_val))
        backbone.train()
        head.train()
        return accs

    gen = torch.Generator().manual_seed(0)
    scales = (round(args.size * 6 / 7), args.size, round(args.size * 8 / 7))
    start = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(x_train), (args.batch_size, ),
                            generator=gen)
        x, y = x_train[idx], y_train[idx]
        if torch.rand(1, generator=gen).item() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        scale = scales[int(torch.randint(0, 3, (1, ), generator=gen))]
        if scale != args.size:
            x = F.interpolate(
                x, size=(scale, scale), mode='bilinear', align_corners=False)
            y = F.interpolate(
                y.float(), size=(scale, scale), mode='nearest').long()
        loss, _ = losses_and_accuracy(forward(pad(x)), pad(y))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        if (step + 1) % args.log_interval == 0 or step + 1 == args.steps:
            accs = validate()
            print(f'step {step + 1}/{args.steps}  loss {loss.item():.3f}  '
                  'held-out object-pixel accuracy ' + '  '.join(
                      f'{a} {v:.3f}' for a, v in zip(attrs, accs)) +
                  f'  {time.time() - start:.0f} s',
                  flush=True)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    torch.save(
        dict(
            state_dict=state,
            meta=dict(
                config=args.config,
                steps=args.steps,
                seed=args.seed,
                accuracy=dict(zip(attrs, accs)))), args.out)
    print(f'backbone weights written to {args.out}')
    result = dict(zip(attrs, accs))
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
