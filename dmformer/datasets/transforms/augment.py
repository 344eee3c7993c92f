# Copyright (c) OpenMMLab. All rights reserved.
"""Training augmentations for RVOS clips and RefCOCO pseudo videos.

All transforms work on the dict-of-lists convention documented in
:mod:`dmformer.datasets.transforms.loading`: per-frame keys (``img``,
``img_shape``, ``gt_masks``, ``gt_bboxes``, ``gt_valid``, ...) are lists of
length ``T`` and video-level keys (``text``, ``video_id``, ...) are scalars.
Geometric transforms draw their random parameters **once per clip** and
apply them to every frame; :class:`VideoPhotoMetricDistortion` draws them
independently for every frame, like the official loader.

The official train pipeline of Ref-YouTube-VOS (ReferFormer's
``make_coco_transforms('train', max_size=640)``) reads::

    scales = [288, 320, 352, 392, 416, 448, 480, 512]
    train_augment = [
        dict(type='VideoRandomFlip', prob=0.5),
        dict(type='VideoPhotoMetricDistortion'),
        dict(type='mmcv.RandomChoice', prob=[0.5, 0.5], transforms=[
            [dict(type='VideoRandomResize', scales=scales, max_size=640)],
            [dict(type='VideoRandomResize', scales=[400, 500, 600]),
             dict(type='VideoRandomSizeCrop', min_size=384, max_size=600),
             dict(type='VideoRandomResize', scales=scales, max_size=640)],
        ]),
        dict(type='CheckValidFrames'),
    ]

``mmcv.RandomChoice`` is applied once per clip (it is not broadcast), so
the branch is shared by all frames; inside each branch the resize and crop
draws are shared by all frames through mmcv's ``TransformBroadcaster`` with
``share_random_params=True``.
"""
import re
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import (BaseTransform, RandomChoiceResize,
                             TransformBroadcaster)
from mmcv.transforms.utils import cache_randomness
from mmdet.datasets.transforms import PhotoMetricDistortion
from mmdet.datasets.transforms import RandomCrop as MMDetRandomCrop
from mmdet.datasets.transforms import Resize as MMDetResize
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from dmformer.registry import TRANSFORMS
from .loading import map_char_span

# ``left``/``right`` (and ``leftmost``/``rightmost``) as whole words: the
# official ``str.replace`` also rewrites sub-words ("bright" -> "bleft",
# "leftover" -> "rightover").
_LEFT_RIGHT_PATTERN = re.compile(r'\b(left|right)(most)?\b', re.IGNORECASE)


def _match_case(word: str, template: str) -> str:
    """Give ``word`` the capitalisation of ``template``."""
    if template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_left_right(text: str) -> str:
    """Swap the words 'left' and 'right' in a caption.

    Both directions are replaced in one pass, only whole words are matched
    (``\\b`` word boundaries, so "left-most" and "right." are swapped, while
    "leftover" or "bright" are not), the compounds "leftmost"/"rightmost"
    are swapped too, and the capitalisation of each word is kept. The
    official loader uses three chained ``str.replace`` calls, which also
    rewrite sub-words.

    Args:
        text (str): The caption.

    Returns:
        str: The caption with 'left' and 'right' exchanged.

    Examples:
        >>> swap_left_right('Left dog, right-most cat, leftover cake')
        'Right dog, left-most cat, leftover cake'
    """

    def _swap(match: 're.Match') -> str:
        word, suffix = match.group(1), match.group(2) or ''
        new = 'right' if word.lower() == 'left' else 'left'
        return _match_case(new, word) + suffix

    return _LEFT_RIGHT_PATTERN.sub(_swap, text)


def _frame_list(results: dict, key: str, transform: str) -> list:
    """Return the per-frame list ``results[key]`` or raise a clear error."""
    if key not in results:
        raise KeyError(f'{transform} needs the per-frame key {key!r}.')
    value = results[key]
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f'{transform} expects {key!r} to be a per-frame list (dict-of-'
            f'lists convention of dmformer.datasets.transforms.loading), '
            f'got {type(value).__name__}.')
    return list(value)


def _zero_boxes(num: int = 1) -> HorizontalBoxes:
    """``num`` all-zero boxes."""
    return HorizontalBoxes(np.zeros((num, 4), dtype=np.float32))


def _box_array(boxes) -> np.ndarray:
    """(N, 4) float32 array of mmdet boxes or an array-like."""
    if isinstance(boxes, BaseBoxes):
        boxes = boxes.tensor.numpy()
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _as_boxes(boxes) -> BaseBoxes:
    """Wrap an array-like of (N, 4) xyxy boxes as HorizontalBoxes."""
    if isinstance(boxes, BaseBoxes):
        return boxes
    return HorizontalBoxes(_box_array(boxes))


def _remap_spans(results: dict, old_text: str, new_text: str) -> None:
    """Move character spans of ``old_text`` onto ``new_text``."""
    if old_text == new_text:
        return
    if results.get('noun_chunks') is not None:
        results['noun_chunks'] = [
            map_char_span(span, old_text, new_text)
            for span in results['noun_chunks']
        ]
    if results.get('gt_subject_span') is not None:
        span = map_char_span(results['gt_subject_span'], old_text, new_text)
        results['gt_subject_span'] = np.asarray(span, dtype=np.int64)


@TRANSFORMS.register_module()
class VideoRandomFlip(BaseTransform):
    """Flip all frames of a clip horizontally with one random draw.

    Images, masks and boxes of every frame are flipped together and the
    words 'left'/'right' of the caption are exchanged (as the official
    loader does, :func:`swap_left_right`). Boxes of frames where the object
    is absent (``gt_valid`` False or an empty box) stay all-zero. If
    ``noun_chunks`` or ``gt_subject_span`` were computed before the flip,
    they are mapped onto the new caption (``ori_text`` is never modified, so
    stored subject labels keep referring to it).

    Required Keys:

    - img (list[np.ndarray])
    - gt_masks (list[BitmapMasks], optional)
    - gt_bboxes (list[HorizontalBoxes], optional)
    - gt_seg_map (list[np.ndarray], optional): object-id maps
    - gt_valid (list[bool], optional)
    - text (str, optional)
    - video_expressions (list[dict], optional): their ``text`` is swapped
      like the caption

    Modified Keys:

    - img, gt_masks, gt_bboxes, gt_seg_map, text, noun_chunks,
      gt_subject_span, video_expressions

    Added Keys:

    - flip (bool), flip_direction (str or None)

    Args:
        prob (float): Probability of flipping the clip. Defaults to 0.5.
        swap_text (bool): Whether to swap 'left' and 'right' in the caption
            when flipping. Defaults to True.
    """

    def __init__(self, prob: float = 0.5, swap_text: bool = True) -> None:
        if not 0. <= prob <= 1.:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.swap_text = swap_text

    @cache_randomness
    def _do_flip(self) -> bool:
        """Draw whether to flip the clip."""
        return bool(np.random.rand() < self.prob)

    def _flip_frames(self, results: dict) -> None:
        """Flip the images and annotations of every frame."""
        imgs = _frame_list(results, 'img', self.__class__.__name__)
        results['img'] = [mmcv.imflip(img, 'horizontal') for img in imgs]
        if results.get('gt_masks') is not None:
            results['gt_masks'] = [
                mask.flip('horizontal') for mask in _frame_list(
                    results, 'gt_masks', self.__class__.__name__)
            ]
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = [
                mmcv.imflip(seg, 'horizontal') for seg in _frame_list(
                    results, 'gt_seg_map', self.__class__.__name__)
            ]
        if results.get('gt_bboxes') is not None:
            boxes_list = _frame_list(results, 'gt_bboxes',
                                     self.__class__.__name__)
            valid = results.get('gt_valid', [True] * len(boxes_list))
            flipped = []
            for img, boxes, is_valid in zip(imgs, boxes_list, valid):
                arr = _box_array(boxes)
                keep = (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])
                boxes = _as_boxes(boxes).clone()
                boxes.flip_(img.shape[:2], 'horizontal')
                # an absent object keeps its all-zero box
                out = boxes.tensor.numpy().copy()
                out[~(keep & bool(is_valid))] = 0
                flipped.append(HorizontalBoxes(out))
            results['gt_bboxes'] = flipped

    def transform(self, results: dict) -> dict:
        """Randomly flip the clip.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: The flipped (or untouched) results with ``flip`` and
            ``flip_direction``.
        """
        flip = self._do_flip()
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        if not flip:
            return results
        self._flip_frames(results)
        if self.swap_text and isinstance(results.get('text'), str):
            old_text = results['text']
            results['text'] = swap_left_right(old_text)
            _remap_spans(results, old_text, results['text'])
        if self.swap_text and results.get('video_expressions') is not None:
            results['video_expressions'] = [
                dict(exp, text=swap_left_right(exp['text']))
                for exp in results['video_expressions']
            ]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'swap_text={self.swap_text})')


@TRANSFORMS.register_module()
class VideoPhotoMetricDistortion(BaseTransform):
    """Photometric distortion drawn independently for every frame.

    Each frame goes through mmdet's
    :class:`~mmdet.datasets.transforms.PhotoMetricDistortion` with its own
    random draw (official settings: brightness ±32, contrast ×[0.5, 1.5]
    before or after an HSV round trip with saturation ×[0.5, 1.5] and hue
    ±18°, random channel permutation; each with probability 0.5), then the
    result is clipped to [0, 255] and cast back to the input dtype so that
    the clip stays uint8.

    Differences with the official ``PhotometricDistort`` (ReferFormer
    ``transforms_video.py``): the official code feeds RGB arrays to OpenCV's
    BGR->HSV conversion, while the frames here are BGR as loaded by mmcv,
    so hue/saturation act on the true colours; mmdet clips the saturation
    to [0, 1] when it is increased; the official ``astype('uint8')``
    wraps out-of-range values around, here they are clipped.

    Required Keys:

    - img (list[np.ndarray])

    Modified Keys:

    - img

    Args:
        brightness_delta (int): Maximum brightness change. Defaults to 32.
        contrast_range (Sequence[float]): Contrast factor range.
            Defaults to (0.5, 1.5).
        saturation_range (Sequence[float]): Saturation factor range.
            Defaults to (0.5, 1.5).
        hue_delta (int): Maximum hue change in degrees. Defaults to 18.
    """

    def __init__(self,
                 brightness_delta: int = 32,
                 contrast_range: Sequence[float] = (0.5, 1.5),
                 saturation_range: Sequence[float] = (0.5, 1.5),
                 hue_delta: int = 18) -> None:
        self.distortion = PhotoMetricDistortion(
            brightness_delta=brightness_delta,
            contrast_range=contrast_range,
            saturation_range=saturation_range,
            hue_delta=hue_delta)

    def transform(self, results: dict) -> dict:
        """Distort every frame with its own random parameters.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: Results with distorted ``img`` (same dtype as the input).
        """
        imgs = _frame_list(results, 'img', self.__class__.__name__)
        out = []
        for img in imgs:
            distorted = self.distortion.transform({'img': img})['img']
            if img.dtype == np.uint8:
                distorted = np.clip(distorted, 0, 255).astype(np.uint8)
            else:
                distorted = distorted.astype(img.dtype)
            out.append(distorted)
        results['img'] = out
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(distortion={self.distortion!r})'


class _SharedFrameTransform(BaseTransform):
    """Apply one per-frame mmcv/mmdet transform to all frames of a clip.

    The wrapped transform runs inside mmcv's
    :class:`~mmcv.transforms.TransformBroadcaster` with
    ``share_random_params=True``, so its ``@cache_randomness`` draws are
    made once per clip. The broadcaster's key mapping is built at call time
    from the per-frame keys present in ``results`` (training clips have
    masks and boxes, test clips only images).
    """

    #: per-frame keys fed to the wrapped transform when present
    frame_keys: Tuple[str, ...] = ('img', 'img_shape', 'gt_masks', 'gt_bboxes',
                                   'gt_seg_map')
    #: per-frame keys created by the wrapped transform (always returned)
    created_keys: Tuple[str, ...] = ()

    def __init__(self, frame_transform: Callable[[dict], dict]) -> None:
        self.frame_transform = frame_transform

    def transform(self, results: dict) -> dict:
        """Broadcast the wrapped transform over the frames.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: Results with the per-frame keys updated.
        """
        name = self.__class__.__name__
        num_frames = len(_frame_list(results, 'img', name))
        keys = [k for k in self.frame_keys if results.get(k) is not None]
        for key in keys:
            if len(_frame_list(results, key, name)) != num_frames:
                raise ValueError(f'{name}: per-frame key {key!r} has '
                                 f'{len(results[key])} entries but there are '
                                 f'{num_frames} frames.')
        mapping = {k: k for k in keys}
        remapping = dict(mapping)
        remapping.update({k: k for k in self.created_keys})
        broadcaster = TransformBroadcaster(
            transforms=[self.frame_transform],
            mapping=mapping,
            remapping=remapping,
            auto_remap=False,
            share_random_params=True)
        results = broadcaster(results)
        for key in keys + list(self.created_keys):
            results[key] = list(results[key])
        results['img_shape'] = [tuple(img.shape[:2]) for img in results['img']]
        return results


class _FrameResize(MMDetResize):
    """mmdet's :class:`~mmdet.datasets.transforms.Resize` whose label maps
    always use OpenCV's nearest neighbour.

    With ``backend='pillow'`` mmdet resizes ``gt_seg_map`` with PIL's
    nearest neighbour, which samples the source pixel under each output
    pixel's centre, while ``gt_masks`` (:meth:`BitmapMasks.rescale`) always
    use OpenCV's, which samples its top-left corner (as the official
    ``interpolate(masks, size, mode='nearest')``): a 2x downscale keeps the
    odd rows of one and the even rows of the other. Resizing the label map
    with OpenCV as well keeps both on the same grid whatever the image
    backend; with ``backend='cv2'`` this is exactly mmdet's call.
    """

    def _resize_seg(self, results: dict) -> None:
        """Resize ``gt_seg_map`` with OpenCV's nearest neighbour."""
        if results.get('gt_seg_map', None) is None:
            return
        resize = mmcv.imrescale if self.keep_ratio else mmcv.imresize
        results['gt_seg_map'] = resize(
            results['gt_seg_map'],
            results['scale'],
            interpolation='nearest',
            backend='cv2')


@TRANSFORMS.register_module()
class VideoRandomResize(_SharedFrameTransform):
    """Resize all frames to one randomly chosen short side.

    The official DETR-style ``RandomResize(sizes, max_size)``: the
    short side becomes ``s``, drawn uniformly from ``scales`` once per clip,
    unless the long side would exceed ``max_size``, in which case the long
    side becomes ``max_size`` (aspect ratio kept). Implemented with mmcv's
    :class:`~mmcv.transforms.RandomChoiceResize` over the scales
    ``(max_size, s)`` with mmdet's :class:`~mmdet.datasets.transforms.Resize`
    (``keep_ratio=True``, which rescales masks and boxes), broadcast to the
    frames with shared random parameters. Sizes are rounded like
    :func:`mmcv.rescale_size` (``int(x * factor + 0.5)``), which can differ
    by one pixel from DETR's rounding.

    Frames are resized by ``backend``; masks (``gt_masks``) and label maps
    (``gt_seg_map``) always by OpenCV's nearest neighbour, which samples the
    same source pixels as the official ``interpolate(..., mode='nearest')``
    of the masks, whatever the frames' backend.

    - ``'cv2'`` (the default): :func:`cv2.resize` with ``INTER_LINEAR``,
      which interpolates the 2 x 2 source pixels around each output pixel's
      centre whatever the scale, so a downscale does not antialias (a 2x
      downscale averages 2 x 2 pixels, a 3x one skips pixels).
    - ``'pillow'``: :meth:`PIL.Image.Image.resize` with ``BILINEAR``, which
      is what the official code does in training (the DETR-style
      ``RandomResize`` calls torchvision's ``F.resize`` on PIL images) and
      at test time (``T.Resize(360)`` on PIL images in
      ``inference_ytvos.py``): torchvision's PIL path calls
      ``img.resize((w, h), Image.BILINEAR)`` and nothing else, its
      ``antialias`` flag only concerns tensors. Pillow's bilinear filter
      widens with the downscale factor (a triangle over 2 x factor source
      pixels), so a downscale *is* antialiased (a 2x downscale weights 4 x
      4 pixels); when enlarging, both backends interpolate the same 2 x 2
      pixels and agree up to rounding (one grey level). Frames must be
      uint8. The official output size floors the
      long side (``int(s * long / short)``) where mmcv rounds it, so a few
      aspect ratios still get one pixel more here (e.g. 480 x 854 -> 360 x
      641 instead of 360 x 640).

    Required Keys:

    - img (list[np.ndarray]), img_shape (list, optional)
    - gt_masks (list[BitmapMasks], optional)
    - gt_bboxes (list[HorizontalBoxes], optional)

    Modified Keys:

    - img, img_shape, gt_masks, gt_bboxes

    Added Keys:

    - scale_factor (list[tuple[float, float]]): (w_scale, h_scale) of this
      resize (like mmdet, not composed with earlier resizes).

    Args:
        scales (Sequence[int]): Candidate short-side lengths.
        max_size (int, optional): Maximum long-side length; None for no
            limit. Must not be smaller than any scale. Defaults to None.
        interpolation (str): Image interpolation. Defaults to 'bilinear'.
        backend (str): Backend that resizes the frames, 'cv2' or 'pillow'
            (the official code's, see above). Defaults to 'cv2'.
    """

    #: image resize backends (see above)
    BACKENDS = ('cv2', 'pillow')

    #: long-side limit standing for "no limit"
    NO_LIMIT = 1 << 20
    created_keys = ('scale_factor', )

    def __init__(self,
                 scales: Sequence[int],
                 max_size: Optional[int] = None,
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2') -> None:
        if isinstance(scales, int):
            scales = [scales]
        scales = [int(s) for s in scales]
        if not scales or min(scales) <= 0:
            raise ValueError(f'scales must be positive ints, got {scales}')
        if max_size is not None and max_size < max(scales):
            raise ValueError(f'max_size ({max_size}) must not be smaller '
                             f'than the largest scale ({max(scales)})')
        if backend not in self.BACKENDS:
            raise ValueError(f'backend must be one of {self.BACKENDS}, got '
                             f'{backend!r}')
        self.scales = scales
        self.max_size = max_size
        self.interpolation = interpolation
        self.backend = backend
        long_side = max_size if max_size is not None else self.NO_LIMIT
        super().__init__(
            RandomChoiceResize(
                scales=[(long_side, s) for s in scales],
                resize_type=_FrameResize,
                keep_ratio=True,
                interpolation=interpolation,
                backend=backend))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scales={self.scales}, '
                f'max_size={self.max_size}, '
                f"interpolation='{self.interpolation}', "
                f"backend='{self.backend}')")


@TRANSFORMS.register_module()
class VideoRandomSizeCrop(_SharedFrameTransform):
    """Crop all frames with one random region.

    The official DETR-style ``RandomSizeCrop(min_size, max_size)``:
    crop height and width are drawn uniformly in
    ``[min(min_size, H), min(max_size, H)]`` (resp. W) and the offset
    uniformly, once per clip. Implemented with mmdet's
    :class:`~mmdet.datasets.transforms.RandomCrop`
    (``crop_type='absolute_range'``, boxes clipped to the crop, not
    recomputed from the masks, like the official code) broadcast to the
    frames with shared random parameters.

    ``allow_negative_crop=True`` keeps clips whose object leaves the crop:
    a frame whose box falls outside the crop then holds zero instances
    (mmdet drops it); :class:`CheckValidFrames` restores one all-zero
    instance and marks the frame invalid.

    Required Keys:

    - img (list[np.ndarray]), img_shape (list, optional)
    - gt_masks (list[BitmapMasks], optional)
    - gt_bboxes (list[HorizontalBoxes], optional)

    Modified Keys:

    - img, img_shape, gt_masks, gt_bboxes

    Args:
        min_size (int): Minimum crop side. Defaults to 384.
        max_size (int): Maximum crop side. Defaults to 600.
    """

    def __init__(self, min_size: int = 384, max_size: int = 600) -> None:
        if not 0 < min_size <= max_size:
            raise ValueError('Expected 0 < min_size <= max_size, got '
                             f'min_size={min_size}, max_size={max_size}')
        self.min_size = min_size
        self.max_size = max_size
        super().__init__(
            MMDetRandomCrop(
                crop_size=(min_size, max_size),
                crop_type='absolute_range',
                allow_negative_crop=True,
                recompute_bbox=False,
                bbox_clip_border=True))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(min_size={self.min_size}, '
                f'max_size={self.max_size})')


@TRANSFORMS.register_module()
class CheckValidFrames(BaseTransform):
    """Recompute which frames still show the object (official ``Check``).

    A frame is valid when it was valid before, its box has a positive area
    and (with ``check_mask``) its mask is not empty. Invalid frames get an
    all-zero box; a frame whose instance was removed by a crop gets one
    all-zero mask and box again, so that every frame holds exactly one
    instance. If no frame is valid the clip is rejected: the transform
    returns None, which makes :class:`mmengine.dataset.BaseDataset` draw
    another sample in training (``on_empty='resample'``), or raises
    :class:`NoValidFrameError` (``on_empty='raise'``).

    The official ``Check`` only tests the box; ``check_mask=True`` (default)
    also requires mask pixels, which is what
    :class:`~dmformer.datasets.transforms.PackRVOSInputs` uses for the
    packed ``valid`` flag, so that a clip passing this check keeps a valid
    frame after packing.

    Required Keys:

    - img (list[np.ndarray])
    - gt_bboxes (list[HorizontalBoxes])
    - gt_masks (list[BitmapMasks], optional)
    - gt_valid (list[bool], optional)

    Modified Keys:

    - gt_bboxes, gt_masks, gt_valid

    Args:
        check_mask (bool): Whether a valid frame also needs a non-empty
            mask. Defaults to True.
        on_empty (str): ``'resample'`` (return None) or ``'raise'`` when no
            frame is valid. Defaults to 'resample'.
    """

    def __init__(self,
                 check_mask: bool = True,
                 on_empty: str = 'resample') -> None:
        if on_empty not in ('resample', 'raise'):
            raise ValueError("on_empty must be 'resample' or 'raise', got "
                             f'{on_empty!r}')
        self.check_mask = check_mask
        self.on_empty = on_empty

    def transform(self, results: dict) -> Optional[dict]:
        """Update ``gt_valid`` and normalise the per-frame annotations.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict or None: The results, or None when no frame is valid and
            ``on_empty='resample'``.
        """
        name = self.__class__.__name__
        imgs = _frame_list(results, 'img', name)
        boxes_list = _frame_list(results, 'gt_bboxes', name)
        masks_list = results.get('gt_masks')
        if masks_list is not None:
            masks_list = _frame_list(results, 'gt_masks', name)
        prev_valid = results.get('gt_valid', [True] * len(imgs))
        if not len(imgs) == len(boxes_list) == len(prev_valid):
            raise ValueError(f'{name}: img, gt_bboxes and gt_valid have '
                             'different numbers of frames.')
        new_boxes, new_masks, valid = [], [], []
        for i, img in enumerate(imgs):
            h, w = img.shape[:2]
            arr = _box_array(boxes_list[i])
            if len(arr) > 1:
                raise ValueError(f'{name}: frame {i} holds {len(arr)} '
                                 'boxes; expected one referred object.')
            box = arr[0] if len(arr) else np.zeros(4, np.float32)
            is_valid = bool(prev_valid[i]) and bool(box[2] > box[0]) and \
                bool(box[3] > box[1])
            if masks_list is not None:
                mask = masks_list[i]
                if len(mask) == 0:
                    mask = BitmapMasks(np.zeros((1, h, w), np.uint8), h, w)
                    is_valid = False
                elif self.check_mask:
                    is_valid = is_valid and bool(mask.masks.any())
                new_masks.append(mask)
            new_boxes.append(
                HorizontalBoxes(box[None]) if is_valid else _zero_boxes())
            valid.append(is_valid)
        results['gt_bboxes'] = new_boxes
        if masks_list is not None:
            results['gt_masks'] = new_masks
        results['gt_valid'] = valid
        if not any(valid):
            if self.on_empty == 'raise':
                raise NoValidFrameError(
                    f'No frame of video {results.get("video_id", "?")!r}, '
                    f'expression {results.get("exp_id", "?")!r} shows the '
                    'object after augmentation.')
            return None
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(check_mask={self.check_mask}, '
                f"on_empty='{self.on_empty}')")


class NoValidFrameError(ValueError):
    """Raised by :class:`CheckValidFrames` when no frame shows the object."""


@TRANSFORMS.register_module()
class ImageToPseudoVideo(BaseTransform):
    """Turn a one-frame sample into a pseudo video (ReferFormer's refexp2seq).

    The clip holds the original image plus ``num_frames - 1`` copies, each
    made from the original by (1) a photometric change: at least one of a
    brightness shift in ``[-brightness_delta, brightness_delta]`` and a
    hue/saturation shift in ``[-hue_sat_delta, hue_sat_delta]`` (imgaug
    ``SomeOf((1, None), [Add, AddToHueAndSaturation])``, hue on imgaug's
    0-255 scale); (2) a random homography: a perspective jitter of the four
    corners by up to ``perspective`` of the image size followed by an
    affine rotation of up to ``rotate`` degrees about the centre and a
    translation of up to ``translate`` of the image size; (3) a motion blur
    of kernel size drawn from ``motion_blur_kernel_sizes`` with probability
    ``motion_blur_prob``. The mask is warped with the same homography
    (nearest neighbour), the boxes of all frames (the original included)
    are recomputed from the masks as in the official code, and the frames
    are shuffled. Implemented with OpenCV instead of imgaug (not a
    dependency); perspective offsets are uniform rather than imgaug's
    normal distribution.

    Per-frame keys listed in ``frame_keys`` (and present) are replicated;
    ``img``, ``gt_masks``, ``gt_bboxes`` and ``gt_valid`` are rebuilt and
    ``img_shape`` is set. ``pseudo_frame_source`` (list[int]) records which
    copy each frame is (0 = the original).

    Required Keys:

    - img (list[np.ndarray] of length 1)
    - gt_masks (list[BitmapMasks] of length 1, one instance)
    - gt_valid (list[bool], optional)

    Modified Keys:

    - img, gt_masks, gt_bboxes, gt_valid, img_shape and ``frame_keys``

    Added Keys:

    - pseudo_frame_source (list[int])

    Args:
        num_frames (int): Number of frames of the pseudo video.
        rotate (float): Maximum rotation in degrees. Defaults to 20.
        translate (float): Maximum translation as a fraction of the image
            size. Defaults to 0.1.
        perspective (float): Maximum corner displacement as a fraction of
            the image size; 0 disables it. Defaults to 0.08.
        brightness_delta (int): Maximum brightness shift. Defaults to 40.
        hue_sat_delta (int): Maximum hue/saturation shift. Defaults to 5.
        motion_blur_prob (float): Probability of a motion blur.
            Defaults to 0.25.
        motion_blur_kernel_sizes (Sequence[int]): Candidate blur kernel
            sizes. Defaults to (9, 11).
        shuffle (bool): Whether to shuffle the frames. Defaults to True.
        frame_keys (Sequence[str]): Per-frame keys to replicate.
            Defaults to ('img_path', 'frame_id', 'frame_idx', 'ori_shape',
            'mask_path', 'scale_factor').
    """

    def __init__(
        self,
        num_frames: int,
        rotate: float = 20.,
        translate: float = 0.1,
        perspective: float = 0.08,
        brightness_delta: int = 40,
        hue_sat_delta: int = 5,
        motion_blur_prob: float = 0.25,
        motion_blur_kernel_sizes: Sequence[int] = (9, 11),
        shuffle: bool = True,
        frame_keys: Sequence[str] = ('img_path', 'frame_id', 'frame_idx',
                                     'ori_shape', 'mask_path', 'scale_factor')
    ) -> None:
        if num_frames < 1:
            raise ValueError(f'num_frames must be >= 1, got {num_frames}')
        if not 0. <= motion_blur_prob <= 1.:
            raise ValueError('motion_blur_prob must be in [0, 1], got '
                             f'{motion_blur_prob}')
        self.num_frames = num_frames
        self.rotate = rotate
        self.translate = translate
        self.perspective = perspective
        self.brightness_delta = brightness_delta
        self.hue_sat_delta = hue_sat_delta
        self.motion_blur_prob = motion_blur_prob
        self.motion_blur_kernel_sizes = tuple(motion_blur_kernel_sizes)
        self.shuffle = shuffle
        self.frame_keys = tuple(frame_keys)

    def _random_homography(self, h: int, w: int) -> np.ndarray:
        """Draw a 3x3 homography (perspective jitter, then affine)."""
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        if self.perspective > 0:
            jitter = np.random.uniform(
                -self.perspective, self.perspective, size=(4, 2))
            dst = src + (jitter * np.array([w, h])).astype(np.float32)
            persp = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
        else:
            persp = np.eye(3)
        angle = np.random.uniform(-self.rotate, self.rotate)
        tx = np.random.uniform(-self.translate, self.translate) * w
        ty = np.random.uniform(-self.translate, self.translate) * h
        affine = np.eye(3)
        affine[:2] = cv2.getRotationMatrix2D((w / 2., h / 2.), angle, 1.)
        affine[0, 2] += tx
        affine[1, 2] += ty
        return affine @ persp

    def _photometric(self, img: np.ndarray) -> np.ndarray:
        """Brightness and/or hue-saturation shift (at least one)."""
        ops = np.random.permutation(2)[:np.random.randint(1, 3)]
        out = img.astype(np.float32)
        if 0 in ops:
            out = out + np.random.randint(-self.brightness_delta,
                                          self.brightness_delta + 1)
        out = np.clip(out, 0, 255).astype(np.uint8)
        if 1 in ops:
            delta = np.random.randint(-self.hue_sat_delta,
                                      self.hue_sat_delta + 1)
            hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.int32)
            # imgaug's hue is on a 0-255 scale, OpenCV's on 0-179
            hsv[..., 0] = (hsv[..., 0] + int(round(delta * 180 / 255))) % 180
            hsv[..., 1] = np.clip(hsv[..., 1] + delta, 0, 255)
            out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
        return out

    def _motion_blur(self, img: np.ndarray) -> np.ndarray:
        """Blur along a random direction with probability
        ``motion_blur_prob``."""
        if np.random.rand() >= self.motion_blur_prob:
            return img
        k = int(np.random.choice(self.motion_blur_kernel_sizes))
        kernel = np.zeros((k, k), dtype=np.float32)
        kernel[k // 2, :] = 1.
        rot = cv2.getRotationMatrix2D((k / 2. - 0.5, k / 2. - 0.5),
                                      np.random.uniform(0, 360), 1.)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        kernel /= max(kernel.sum(), 1e-6)
        return cv2.filter2D(img, -1, kernel)

    def _augment(self, img: np.ndarray,
                 mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Make one augmented copy of an image and its (H, W) mask."""
        h, w = img.shape[:2]
        matrix = self._random_homography(h, w)
        img = self._photometric(img)
        img = cv2.warpPerspective(
            img,
            matrix, (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0)
        mask = cv2.warpPerspective(
            mask.astype(np.uint8),
            matrix, (w, h),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0)
        return self._motion_blur(img), mask

    def transform(self, results: dict) -> dict:
        """Build the pseudo video.

        Args:
            results (dict): Result dict with one frame.

        Returns:
            dict: Results with ``num_frames`` frames.
        """
        name = self.__class__.__name__
        imgs = _frame_list(results, 'img', name)
        masks = _frame_list(results, 'gt_masks', name)
        if len(imgs) != 1 or len(masks) != 1:
            raise ValueError(f'{name} expects a single-frame sample, got '
                             f'{len(imgs)} frames.')
        if len(masks[0]) != 1:
            raise ValueError(f'{name} expects one instance, got '
                             f'{len(masks[0])}.')
        img, mask = imgs[0], masks[0].masks[0]
        if img.dtype != np.uint8:
            raise ValueError(f'{name} expects uint8 images, got '
                             f'{img.dtype}.')
        frames: List[Tuple[np.ndarray, np.ndarray]] = [(img, mask)]
        for _ in range(self.num_frames - 1):
            frames.append(self._augment(img, mask))
        order = list(range(self.num_frames))
        if self.shuffle:
            order = list(np.random.permutation(self.num_frames))
        h, w = img.shape[:2]
        valid0 = bool(results.get('gt_valid', [True])[0])
        out_imgs, out_masks, out_boxes, out_valid = [], [], [], []
        for idx in order:
            frame, frame_mask = frames[idx]
            bitmap = BitmapMasks(frame_mask[None].astype(np.uint8), h, w)
            is_valid = valid0 and bool(frame_mask.any())
            out_imgs.append(frame)
            out_masks.append(bitmap)
            out_boxes.append(
                bitmap.get_bboxes('hbox') if is_valid else _zero_boxes())
            out_valid.append(is_valid)
        results['img'] = out_imgs
        results['gt_masks'] = out_masks
        results['gt_bboxes'] = out_boxes
        results['gt_valid'] = out_valid
        results['img_shape'] = [(h, w)] * self.num_frames
        for key in self.frame_keys:
            value = results.get(key)
            if isinstance(value, (list, tuple)) and len(value) == 1:
                results[key] = [value[0]] * self.num_frames
        results['pseudo_frame_source'] = [int(i) for i in order]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'rotate={self.rotate}, translate={self.translate}, '
                f'perspective={self.perspective}, '
                f'brightness_delta={self.brightness_delta}, '
                f'hue_sat_delta={self.hue_sat_delta}, '
                f'motion_blur_prob={self.motion_blur_prob}, '
                f'motion_blur_kernel_sizes={self.motion_blur_kernel_sizes}, '
                f'shuffle={self.shuffle}, frame_keys={self.frame_keys})')


__all__: List[str] = [
    'swap_left_right', 'VideoRandomFlip', 'VideoPhotoMetricDistortion',
    'VideoRandomResize', 'VideoRandomSizeCrop', 'CheckValidFrames',
    'NoValidFrameError', 'ImageToPseudoVideo'
]
