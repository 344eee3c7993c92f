# Copyright (c) OpenMMLab. All rights reserved.
import math
from numbers import Number
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import ImgDataPreprocessor

from dmformer.registry import MODELS


@MODELS.register_module()
class RVOSDataPreprocessor(ImgDataPreprocessor):
    """Data pre-processor for RVOS clips.

    Like mmdet's ``TrackDataPreprocessor`` for one referred object per clip
    (the official collate, ``misc.py:305-318``):

    - moves the data to the model's device;
    - converts every clip, a uint8 Tensor of shape (T, 3, H, W), from BGR to
      RGB, to float and normalises it with ``mean``/``std``;
    - pads all clips at the bottom/right with ``pad_value`` to the largest
      (H, W) of the batch rounded up to the pad divisor
      (``pad_size_divisor`` in training, ``test_pad_size_divisor`` at test
      time) and stacks them into a Tensor of shape (B, T, 3, Hp, Wp)
      (padding after normalisation, like the official zero-padded
      ``NestedTensor``). The padding mask of sample ``i`` is the area
      outside its ``img_shape``;
    - writes ``batch_input_shape`` (Hp, Wp) and ``pad_shape`` (the sample's
      own size rounded up to the pad divisor) into every sample's
      metainfo; one clip with several samples (several sentences on the
      same clip, see :meth:`DMFormer.forward_features`) stays one clip;
    - in training, zero-pads ``gt_instances.masks`` (T, h, w) to
      ``batch_input_shape`` (test-time masks stay at ``ori_shape``).

    The official code pads to multiples of 32 in training (its collate,
    ``nested_tensor_from_videos_list(..., size_divisibility=32)``) but not
    at inference: ``inference_ytvos.py`` gives the model a plain list of
    frames, which it stacks with ``size_divisibility=1``, so a 360 x 640
    clip runs unpadded (here: 384 x 640 with the default divisor).
    ``test_pad_size_divisor=1`` reproduces that; the stride-4 to stride-32
    maps are then the backbone's own ceil-divided sizes (90 x 160 ... 12 x
    20 for 360 x 640). With :class:`DMFormer`'s ``batch_invariant`` (the
    default) every clip of a test batch runs at its ``pad_shape``, i.e.
    unpadded with a divisor of 1, whatever its batch mates.

    Args:
        mean (Sequence[Number], optional): Pixel mean of the R, G, B
            channels. Defaults to the ImageNet mean (123.675, 116.28,
            103.53).
        std (Sequence[Number], optional): Pixel std of the R, G, B channels.
            Defaults to the ImageNet std (58.395, 57.12, 57.375).
        bgr_to_rgb (bool): Whether to convert BGR inputs to RGB.
            Defaults to True.
        pad_size_divisor (int): Padded sizes are multiples of it (in
            training, and at test time unless ``test_pad_size_divisor`` is
            given). Defaults to 32.
        test_pad_size_divisor (int, optional): The divisor at test time
            (``forward(..., training=False)``: validation, testing,
            inference); 1 pads a batch to its largest clip only and a lone
            clip not at all, as the official inference. None: the same as
            ``pad_size_divisor``. Defaults to None.
        pad_value (Number): Value of padded pixels (after normalisation).
            Defaults to 0.
        non_blocking (bool): Whether to copy to the device without blocking.
            Defaults to False.

    Raises:
        ValueError: a pad divisor is not a positive int; (in
            :meth:`forward`) a clip is not (T, 3, H, W), clips
            of a batch have different ``T``, or a training mask is larger
            than the batch.
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = (123.675, 116.28, 103.53),
                 std: Optional[Sequence[Number]] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = True,
                 pad_size_divisor: int = 32,
                 pad_value: Union[float, int] = 0,
                 non_blocking: bool = False,
                 test_pad_size_divisor: Optional[int] = None) -> None:
        if test_pad_size_divisor is None:
            test_pad_size_divisor = pad_size_divisor
        for name, value in (('pad_size_divisor', pad_size_divisor),
                            ('test_pad_size_divisor', test_pad_size_divisor)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'RVOSDataPreprocessor: {name} must be a '
                                 f'positive int, got {value!r}')
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            bgr_to_rgb=bgr_to_rgb,
            non_blocking=non_blocking)
        self.bgr_to_rgb = bgr_to_rgb
        self.test_pad_size_divisor = test_pad_size_divisor

    @staticmethod
    def _pad_size(h: int, w: int, div: int) -> Tuple[int, int]:
        """Round (h, w) up to multiples of ``div``."""
        return math.ceil(h / div) * div, math.ceil(w / div) * div

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise, pad and stack a batch of clips.

        Args:
            data (dict): ``inputs`` (list of uint8 Tensors (T, 3, H, W) or
                one Tensor (B, T, 3, H, W)) and ``data_samples`` (list of
                :obj:`RVOSDataSample`, optional), as collated by
                ``pseudo_collate``.
            training (bool): Whether this is a training batch: it is
                padded to ``pad_size_divisor`` and its ground-truth masks
                are padded; otherwise to ``test_pad_size_divisor``.
                Defaults to False.

        Returns:
            dict: ``inputs`` float Tensor (B, T, 3, Hp, Wp) and
            ``data_samples``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        # a (B, T, 3, H, W) Tensor or a list of (T, 3, H, W) Tensors
        clips: List[torch.Tensor] = list(inputs)
        if not clips:
            raise ValueError('RVOSDataPreprocessor got an empty batch.')
        for i, clip in enumerate(clips):
            if clip.dim() != 4 or clip.shape[1] != 3:
                raise ValueError(
                    f'Clip {i} of the batch must have shape (T, 3, H, W), '
                    f'got {tuple(clip.shape)}.')
        num_frames = [clip.shape[0] for clip in clips]
        if len(set(num_frames)) != 1:
            raise ValueError('All videos of a batch must have the same '
                             f'number of frames T, got {num_frames}.')

        img_sizes = [tuple(clip.shape[-2:]) for clip in clips]
        div = self.pad_size_divisor if training else \
            self.test_pad_size_divisor
        batch_h, batch_w = self._pad_size(
            max(h for h, _ in img_sizes), max(w for _, w in img_sizes), div)
        num_imgs, t = len(clips), num_frames[0]
        batch_inputs = clips[0].new_full((num_imgs, t, 3, batch_h, batch_w),
                                         self.pad_value,
                                         dtype=torch.float32)
        for i, clip in enumerate(clips):
            if self._channel_conversion:
                clip = clip[:, [2, 1, 0]]
            clip = clip.float()
            if self._enable_normalize:
                # mean/std have shape (3, 1, 1): broadcast over (T, 3, H, W)
                clip = (clip - self.mean) / self.std
            h, w = img_sizes[i]
            batch_inputs[i, :, :, :h, :w] = clip

        if data_samples is not None:
            if len(clips) == 1 and len(data_samples) > 1:
                # several sentences on one clip (shared visual features)
                img_sizes = img_sizes * len(data_samples)
            elif len(data_samples) != len(clips):
                raise ValueError(f'{len(data_samples)} data samples for '
                                 f'{len(clips)} clips')
            batch_input_shape = (batch_h, batch_w)
            for data_sample, (h, w) in zip(data_samples, img_sizes):
                data_sample.set_metainfo(
                    dict(
                        batch_input_shape=batch_input_shape,
                        pad_shape=self._pad_size(h, w, div)))
            if training:
                self.pad_gt_masks(data_samples, batch_input_shape)
        return dict(inputs=batch_inputs, data_samples=data_samples)

    @staticmethod
    def pad_gt_masks(data_samples: Sequence,
                     batch_input_shape: Tuple[int, int]) -> None:
        """Zero-pad ``gt_instances.masks`` (T, h, w) to the batch shape.

        Args:
            data_samples (Sequence[:obj:`RVOSDataSample`]): Samples, changed
                in place.
            batch_input_shape (tuple[int, int]): (Hp, Wp).
        """
        batch_h, batch_w = batch_input_shape
        for data_sample in data_samples:
            if 'gt_instances' not in data_sample or \
                    'masks' not in data_sample.gt_instances:
                continue
            masks = data_sample.gt_instances.masks
            h, w = masks.shape[-2:]
            if h > batch_h or w > batch_w:
                raise ValueError(
                    f'gt masks of video {data_sample.get("video_id", "?")!r}'
                    f' have size {(h, w)}, larger than the batch input '
                    f'{batch_input_shape}; in training they must be at '
                    'img_shape.')
            padded = masks.new_zeros((masks.shape[0], batch_h, batch_w))
            padded[:, :h, :w] = masks
            data_sample.gt_instances.masks = padded
