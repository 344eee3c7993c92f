# Copyright (c) OpenMMLab. All rights reserved.
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from dmformer.registry import TRANSFORMS
from dmformer.structures.rvos_data_sample import RVOSDataSample


def _to_bool_mask(mask: Any, where: str) -> Optional[np.ndarray]:
    """Turn one frame's ``gt_masks`` entry into a (H, W) bool array.

    Returns None for a mask holding zero instances (removed by a crop).
    """
    arr = mask.masks if hasattr(mask, 'masks') else np.asarray(mask)
    if arr.ndim == 3:
        if arr.shape[0] == 0:
            return None
        if arr.shape[0] != 1:
            raise ValueError(f'{where}: expected one instance per frame, '
                             f'got {arr.shape[0]}.')
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f'{where}: expected a (H, W) mask, got shape '
                         f'{arr.shape}.')
    return arr.astype(bool)


def _to_box(box: Any) -> np.ndarray:
    """Turn one frame's ``gt_bboxes`` entry into a (4,) float32 array."""
    if hasattr(box, 'tensor'):  # mmdet BaseBoxes
        box = box.tensor
    if isinstance(box, torch.Tensor):
        box = box.detach().cpu().numpy()
    box = np.asarray(box, dtype=np.float32).reshape(-1, 4)
    return box[0] if len(box) else np.zeros(4, dtype=np.float32)


@TRANSFORMS.register_module()
class PackRVOSInputs(BaseTransform):
    """Pack an RVOS clip into model inputs and an :obj:`RVOSDataSample`.

    The counterpart of mmdet's ``PackTrackInputs`` for one referred object
    (the data contract is documented in
    :mod:`dmformer.structures.rvos_data_sample`).

    - ``inputs``: uint8 Tensor of shape (T, 3, H, W), channel order as
      loaded (BGR for :class:`LoadRVOSFrames`).
    - ``data_samples.gt_instances`` (if ``gt_masks`` is in ``results``):
      ``masks`` bool (T, H, W), ``bboxes`` float (T, 4) xyxy and ``valid``
      bool (T,). A frame whose mask lost its instance (a crop) or whose
      ``gt_valid`` is False is marked invalid and gets a zero box. With
      ``gt_seg_map`` in ``results`` (see :class:`LoadRVOSAnnotations`),
      also ``id_maps`` uint8 (T, H, W): every object's id per pixel.
    - ``data_samples.gt_subject_span``: LongTensor (2,) if present.
    - metainfo: ``meta_keys``. ``frame_ids``/``img_paths`` are read from the
      per-frame ``frame_id``/``img_path`` lists; per-frame lists of
      video-level values (``ori_shape``, ``img_shape``, ``scale_factor``,
      ``flip``, ``flip_direction``) are reduced to one value.

    Args:
        meta_keys (Sequence[str]): Meta keys to pack. Missing keys are
            skipped. Defaults to ``PackRVOSInputs.DEFAULT_META_KEYS``.

    Raises:
        ValueError: Frames of different sizes, or a malformed mask.
    """

    DEFAULT_META_KEYS = ('video_id', 'exp_id', 'obj_id', 'text', 'noun_chunks',
                         'frame_ids', 'img_paths', 'ori_shape', 'img_shape',
                         'scale_factor', 'flip', 'flip_direction',
                         'subject_source', 'video_expressions',
                         'object_categories')
    # meta key -> per-frame key holding its values
    FRAME_LIST_KEYS = {'frame_ids': 'frame_id', 'img_paths': 'img_path'}
    # per-frame keys whose values must agree over the clip
    STRICT_KEYS = ('ori_shape', 'img_shape')
    # keys whose single (video-level) value is itself a sequence
    # video-level lists, never reduced (e.g. one noun chunk in a T=1 clip)
    VIDEO_LIST_KEYS = ('noun_chunks', 'valid_indices', 'video_frame_ids',
                       'video_expressions')
    SEQUENCE_VALUED_KEYS = ('ori_shape', 'img_shape', 'scale_factor',
                            'pad_shape')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def _reduce(self, key: str, value: Any, num_frames: int) -> Any:
        """Reduce a per-frame list of equal values to one value."""
        if key in self.VIDEO_LIST_KEYS:
            # video-level lists whose length may equal T by coincidence
            return [
                tuple(v) if isinstance(v, (tuple, list)) else v
                for v in value
            ]
        is_frame_list = isinstance(value, list) and len(value) == num_frames
        if is_frame_list and key in self.SEQUENCE_VALUED_KEYS:
            # e.g. img_shape [h, w] of a 2-frame clip is one shape
            is_frame_list = all(
                isinstance(v, (tuple, list, np.ndarray)) for v in value)
        if not is_frame_list:
            if key in self.SEQUENCE_VALUED_KEYS:
                return tuple(np.asarray(value).tolist())
            return value
        normed = [
            tuple(np.asarray(v).tolist()) if isinstance(
                v, (tuple, list, np.ndarray)) else v for v in value
        ]
        if all(v == normed[0] for v in normed):
            return normed[0]
        if key in self.STRICT_KEYS:
            raise ValueError(f'Frames of one clip must share {key}, got '
                             f'{normed}.')
        return value

    def _pack_instances(self, results: dict, num_frames: int) -> InstanceData:
        """Pack the per-frame annotations into an InstanceData of length
        T."""
        video_id = results.get('video_id', '?')
        masks, boxes, valid = [], [], []
        gt_valid = results.get('gt_valid', [True] * num_frames)
        gt_bboxes = results.get('gt_bboxes', [None] * num_frames)
        shape: Optional[Tuple[int, int]] = None
        for i, frame_mask in enumerate(results['gt_masks']):
            where = f'gt_masks of frame {i} of video {video_id!r}'
            mask = _to_bool_mask(frame_mask, where)
            if mask is not None:
                shape = mask.shape
            masks.append(mask)
            box = np.zeros(4, dtype=np.float32)
            if mask is not None and gt_bboxes[i] is not None:
                box = _to_box(gt_bboxes[i])
            is_valid = (
                mask is not None and bool(gt_valid[i]) and bool(mask.any()))
            valid.append(is_valid)
            boxes.append(box if is_valid else np.zeros(4, np.float32))
        if shape is None:  # every instance was cropped away
            frame_mask = results['gt_masks'][0]
            shape = (frame_mask.height, frame_mask.width) if hasattr(
                frame_mask, 'height') else tuple(results['img_shape'][0])
        for i, mask in enumerate(masks):
            if mask is None:
                masks[i] = np.zeros(shape, dtype=bool)
            elif mask.shape != shape:
                raise ValueError(
                    f'gt_masks of video {video_id!r} have different sizes '
                    f'({mask.shape} vs {shape}).')
        instances = InstanceData()
        # T x (H, W) -> (T, H, W)
        instances.masks = torch.from_numpy(np.stack(masks))
        instances.bboxes = torch.from_numpy(np.stack(boxes))
        instances.valid = torch.tensor(valid, dtype=torch.bool)
        if results.get('gt_seg_map') is not None:
            id_maps = np.stack(results['gt_seg_map'])
            if id_maps.shape[1:] != shape:
                raise ValueError(
                    f'gt_seg_map of video {video_id!r} has size '
                    f'{id_maps.shape[1:]} but the masks {shape}.')
            instances.id_maps = torch.from_numpy(id_maps)
        return instances

    def transform(self, results: dict) -> dict:
        """Pack the clip.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: ``inputs`` (uint8 Tensor (T, 3, H, W)) and
            ``data_samples`` (:obj:`RVOSDataSample`).
        """
        imgs = results['img']
        if not isinstance(imgs, (list, tuple)):
            imgs = [imgs]
        num_frames = len(imgs)
        shapes = {img.shape for img in imgs}
        if len(shapes) != 1:
            raise ValueError(
                f'Frames of video {results.get("video_id", "?")!r} have '
                f'different sizes {sorted(shapes)}; cannot stack them.')
        # T x (H, W, C) -> (T, H, W, C) -> (T, C, H, W)
        video = np.stack(
            [img if img.ndim == 3 else img[..., None] for img in imgs])
        inputs = torch.from_numpy(
            np.ascontiguousarray(video.transpose(0, 3, 1, 2)))

        data_sample = RVOSDataSample()
        if 'gt_masks' in results:
            data_sample.gt_instances = self._pack_instances(
                results, num_frames)
        if results.get('gt_subject_span') is not None:
            data_sample.gt_subject_span = torch.as_tensor(
                np.asarray(results['gt_subject_span']).reshape(2),
                dtype=torch.long)

        metainfo = {}
        for key in self.meta_keys:
            src = self.FRAME_LIST_KEYS.get(key, key)
            if src not in results:
                continue
            value = results[src]
            if key in self.FRAME_LIST_KEYS:
                metainfo[key] = list(value)
            else:
                metainfo[key] = self._reduce(key, value, num_frames)
        data_sample.set_metainfo(metainfo)
        return dict(inputs=inputs, data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


__all__ = ['PackRVOSInputs']
