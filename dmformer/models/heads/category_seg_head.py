# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample
from dmformer.utils import ConfigType, OptMultiConfig


@MODELS.register_module()
class CategorySegHead(BaseModule):
    """Training-only semantic segmentation of every annotated object by its
    category (an auxiliary head, as mmseg's ``auxiliary_head``).

    Ref-YouTube-VOS annotates every object of a video with a category in
    ``meta.json`` (65 classes: person, dog, ...; the built-in synthetic
    data names the shape: circle, square, ...) and the annotation maps
    show every object. This head segments all of them by category on the
    text-free visual levels, so a backbone trained from scratch learns
    what the objects are, which the referring losses (one expression, one
    object per clip) teach slowly: on the synthetic data a from-scratch
    tiny Swin trained with the referring losses alone learns colour but
    not shape. It adds no module to inference.

    The levels are mapped to ``channels`` by 1x1 convolutions, upsampled
    to the first level and summed, then a 3x3 convolution with ReLU and a
    1x1 classifier give ``len(classes) + 1`` logits per cell (class 0:
    background); the logits are upsampled to the padded input and trained
    with a per-pixel cross-entropy. Pixels of an object whose category is
    not in ``classes`` and the batch padding are ignored.

    Args:
        classes (Sequence[str]): Object categories (``meta.json``'s
            ``category`` values).
        in_channels (int): Channels of every visual level (the input
            projection's ``out_channels``).
        channels (int): Width of the head. Defaults to 64.
        num_levels (int): Visual levels used. Defaults to 3.
        feat_stride (int): Stride of the first visual level in input
            pixels. Defaults to 8.
        ignore_index (int): Target of ignored pixels. Defaults to 255.
        with_background (bool): Whether the background pixels are a class
            (0) of the loss; False ignores them, so the loss only teaches
            which category an object pixel belongs to (the referring losses
            already teach where the objects are). Defaults to True.
        loss_seg (dict): Config of the per-pixel loss. Defaults to mmdet
            ``CrossEntropyLoss`` (softmax) averaged over the pixels that
            are not ignored, weight 1.0.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 classes: Sequence[str],
                 in_channels: int,
                 channels: int = 64,
                 num_levels: int = 3,
                 feat_stride: int = 8,
                 ignore_index: int = 255,
                 with_background: bool = True,
                 loss_seg: ConfigType = dict(
                     type='mmdet.CrossEntropyLoss',
                     avg_non_ignore=True,
                     loss_weight=1.0),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        classes = tuple(classes)
        if not classes or len(set(classes)) != len(classes):
            raise ValueError('CategorySegHead: classes must be a non-empty '
                             f'sequence of distinct names, got {classes!r}')
        if num_levels < 1 or feat_stride < 1:
            raise ValueError('CategorySegHead: num_levels and feat_stride '
                             'must be >= 1')
        if not 0 <= ignore_index < 256 or ignore_index <= len(classes):
            raise ValueError(
                f'CategorySegHead: ignore_index {ignore_index} must lie in '
                f'({len(classes)}, 256)')
        self.classes = classes
        self.class_index = {c: k + 1 for k, c in enumerate(classes)}
        self.num_levels = num_levels
        self.feat_stride = feat_stride
        self.ignore_index = ignore_index
        self.with_background = with_background
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(in_channels, channels, 1) for _ in range(num_levels))
        self.fuse_conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.conv_seg = nn.Conv2d(channels, len(classes) + 1, 1)
        self.loss_seg = MODELS.build(loss_seg)

    def forward(self, mlvl_feats: Sequence[Tensor]) -> Tensor:
        """Category logits on the first level's grid.

        Args:
            mlvl_feats (Sequence[Tensor]): Visual levels, (N, C, h_l, w_l),
                the first at ``feat_stride`` of the padded input.

        Returns:
            Tensor: (N, len(classes) + 1, h_0, w_0) logits.
        """
        if len(mlvl_feats) < self.num_levels:
            raise ValueError(f'CategorySegHead: {self.num_levels} levels '
                             f'needed, got {len(mlvl_feats)}')
        size = mlvl_feats[0].shape[-2:]
        x = self.lateral_convs[0](mlvl_feats[0])
        for conv, feat in zip(self.lateral_convs[1:],
                              mlvl_feats[1:self.num_levels]):
            x = x + F.interpolate(
                conv(feat), size=size, mode='bilinear', align_corners=False)
        return self.conv_seg(self.fuse_conv(x))

    def get_targets(self, data_samples: List[RVOSDataSample],
                    num_frames: int, size: Sequence[int],
                    device: torch.device) -> Tensor:
        """Per-pixel category targets of a batch of clips.

        Args:
            data_samples (list[:obj:`RVOSDataSample`]): B samples with
                ``gt_instances.id_maps`` (T, H, W) and ``object_categories``
                (``{obj_id: category}``) in their metainfo.
            num_frames (int): Frames per clip T.
            size (Sequence[int]): Padded input size (H_pad, W_pad).
            device (torch.device): Device of the targets.

        Returns:
            Tensor: Long (B*T, H_pad, W_pad): 0 background (``ignore_index``
            without ``with_background``), k + 1 the k-th class,
            ``ignore_index`` for unknown categories and padding.
        """
        targets = torch.full((len(data_samples) * num_frames, *size),
                             self.ignore_index,
                             dtype=torch.long,
                             device=device)
        for i, sample in enumerate(data_samples):
            categories = sample.metainfo.get('object_categories')
            if categories is None or 'id_maps' not in sample.gt_instances:
                raise ValueError(
                    'CategorySegHead: sample '
                    f'{sample.metainfo.get("video_id", i)!r} lacks '
                    '"object_categories" or gt_instances.id_maps (set '
                    'with_object_categories=True on the dataset and '
                    'LoadRVOSAnnotations(with_seg_map=True))')
            id_maps = sample.gt_instances.id_maps.to(device).long()
            if id_maps.shape[0] != num_frames:
                raise ValueError(
                    f'CategorySegHead: sample {i} has {id_maps.shape[0]} '
                    f'id maps for {num_frames} frames')
            # object id -> target class (ids without a known category are
            # ignored, not counted as background)
            lut = torch.full((256, ), self.ignore_index, dtype=torch.long,
                             device=device)
            lut[0] = 0 if self.with_background else self.ignore_index
            for obj_id, category in categories.items():
                lut[int(obj_id)] = self.class_index.get(
                    category, self.ignore_index)
            h, w = id_maps.shape[-2:]
            targets[i * num_frames:(i + 1) * num_frames, :h, :w] = \
                lut[id_maps]
        return targets

    def loss(self, mlvl_feats: Sequence[Tensor],
             data_samples: List[RVOSDataSample]) -> Dict[str, Tensor]:
        """The per-pixel category cross-entropy of a batch of clips.

        Args:
            mlvl_feats (Sequence[Tensor]): Visual levels, (B*T, C, h_l,
                w_l) in video-major order.
            data_samples (list[:obj:`RVOSDataSample`]): B samples (see
                :meth:`get_targets`).

        Returns:
            dict[str, Tensor]: ``loss_category_seg`` and
            ``category_seg_acc`` (pixel accuracy on the object pixels;
            reporting only).
        """
        logits = self(mlvl_feats)
        num_frames = logits.shape[0] // len(data_samples)
        s = self.feat_stride
        size = (logits.shape[-2] * s, logits.shape[-1] * s)
        targets = self.get_targets(data_samples, num_frames, size,
                                   logits.device)
        logits = F.interpolate(
            logits, size=size, mode='bilinear', align_corners=False)
        loss = self.loss_seg(
            logits, targets, ignore_index=self.ignore_index)
        with torch.no_grad():
            objects = (targets > 0) & (targets != self.ignore_index)
            correct = (logits.argmax(1) == targets) & objects
            acc = correct.sum() / objects.sum().clamp(min=1)
        return dict(loss_category_seg=loss, category_seg_acc=acc)
