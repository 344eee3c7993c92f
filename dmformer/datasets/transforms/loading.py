# Copyright (c) OpenMMLab. All rights reserved.
"""Loading transforms for referring video object segmentation (RVOS).

Data convention of the RVOS pipelines
=====================================

A dataset item (see :class:`dmformer.datasets.BaseRVOSDataset`) is one
(video, expression[, anchor frame]) pair described by **video-level**
scalars. :class:`RVOSFrameSample` turns it into a **dict of lists** in the
style of mmdet's ``frame_sampling.py``: every *per-frame* key holds a list
of length ``T`` (the number of sampled frames) while *video-level* keys stay
scalars.

Video-level keys (scalars, never lists):

- ``video_id`` (str), ``exp_id`` (str), ``obj_id`` (int, ``-1`` if unknown)
- ``text`` (str): the cleaned caption; the only key a flip may rewrite
  (``'left'`` <-> ``'right'``).
- ``ori_text`` (str): the cleaned caption as stored in the dataset, never
  modified (stored subject spans refer to it).
- ``video_frame_ids`` (list[str]): names of *all* frames of the video,
  ``video_length`` (int), ``img_dir`` / ``ann_dir`` (str or None),
  ``img_suffix`` / ``ann_suffix`` (str), ``anchor_idx`` (int or None).
- ``subject_span`` (list[int] or None): stored teacher label, a character
  span ``[start, end)`` of ``ori_text``.
- written by text transforms: ``noun_chunks`` (list[tuple[int, int]]),
  ``gt_subject_span`` (np.ndarray int64 (2,)), ``subject_source`` (str).
- written by a flip (if any): ``flip`` (bool), ``flip_direction`` (str).
  :class:`PackRVOSInputs` also accepts them as per-frame lists of equal
  values.

Per-frame keys (lists of length ``T``, index ``i`` = ``i``-th sampled frame
in temporal order):

- ``frame_id`` (str), ``frame_idx`` (int, index in ``video_frame_ids``),
  ``img_path`` (str), ``mask_path`` (str, only when annotations exist).
- after :class:`LoadRVOSFrames`: ``img`` (np.ndarray uint8 (H, W, 3), BGR),
  ``img_shape`` and ``ori_shape`` (tuple (h, w)).
- after :class:`LoadRVOSAnnotations`: ``gt_masks``
  (:obj:`mmdet.structures.mask.BitmapMasks` holding **one** instance, or
  zero after a crop that removed it), ``gt_bboxes``
  (:obj:`mmdet.structures.bbox.HorizontalBoxes` of shape (1, 4), xyxy
  pixels, zeros when the object is absent) and ``gt_valid`` (bool).
- written by geometric transforms: ``scale_factor`` etc.

Because per-frame values are lists, per-frame mmcv/mmdet transforms can be
applied to all frames with the same random parameters by
``TransformBroadcaster(share_random_params=True)``. As video-level scalars
cannot be scattered, the wrapper must name the per-frame keys explicitly,
and list the keys the wrapped transforms create in ``remapping``::

    dict(type='TransformBroadcaster',
         mapping=dict(img='img', img_shape='img_shape', gt_masks='gt_masks',
                      gt_bboxes='gt_bboxes'),
         remapping=dict(img='img', img_shape='img_shape',
                        gt_masks='gt_masks', gt_bboxes='gt_bboxes',
                        scale_factor='scale_factor'),
         auto_remap=False,
         share_random_params=True,
         transforms=[dict(type='mmdet.Resize', scale=(640, 360),
                          keep_ratio=True)])

:class:`~dmformer.datasets.transforms.VideoRandomResize` and
``VideoRandomSizeCrop`` (``augment.py``) package exactly this.
"""
import io
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine import fileio
from mmengine.logging import print_log
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as coco_mask

from dmformer.registry import TRANSFORMS


def _require_frame_list(results: dict, key: str, transform: str) -> list:
    """Return ``results[key]`` checking it is a per-frame list."""
    if key not in results:
        raise KeyError(f'{transform} needs the per-frame key {key!r}; '
                       'run RVOSFrameSample first.')
    value = results[key]
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f'{transform} expects {key!r} to be a per-frame list (dict-of-'
            f'lists convention, run RVOSFrameSample first), got '
            f'{type(value).__name__}.')
    return list(value)


@TRANSFORMS.register_module()
class LoadRVOSFrames(BaseTransform):
    """Load all sampled frames of a clip.

    Each frame is read with mmcv's :class:`~mmcv.transforms.LoadImageFromFile`
    (BGR, uint8 unless ``to_float32``); its errors are turned into messages
    that name the offending file.

    Required Keys:

    - img_path (list[str])

    Added Keys:

    - img (list[np.ndarray]): (H, W, 3) per frame.
    - img_shape (list[tuple[int, int]])
    - ori_shape (list[tuple[int, int]])

    Args:
        to_float32 (bool): Whether to convert the frames to float32.
            Defaults to False.
        color_type (str): Flag of :func:`mmcv.imfrombytes`.
            Defaults to 'color'.
        imdecode_backend (str): Decoding backend. Defaults to 'cv2'.
        backend_args (dict, optional): File backend arguments of
            :mod:`mmengine.fileio`. Defaults to None.

    Raises:
        FileNotFoundError: A frame file does not exist.
        ValueError: A frame cannot be decoded, or the frames of a clip do not
            share one size.
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args
        self.loader = LoadImageFromFile(
            to_float32=to_float32,
            color_type=color_type,
            imdecode_backend=imdecode_backend,
            backend_args=backend_args)

    def _load_one(self, path: str, video_id: str) -> np.ndarray:
        """Load one frame, naming the file in any error.

        ``video_id`` may carry the expression too, e.g. ``"'v' (expression
        '3')"``.
        """
        try:
            out = self.loader.transform({'img_path': path})
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'Frame file {path!r} of video {video_id} does not '
                'exist.') from e
        except Exception as e:  # decoding errors, failed asserts, ...
            raise ValueError(f'Cannot read frame {path!r} of video '
                             f'{video_id} (corrupt or not an image): '
                             f'{e}') from e
        if out is None or out.get('img') is None:
            raise ValueError(f'Cannot read frame {path!r} of video '
                             f'{video_id} (corrupt or not an image).')
        return out['img']

    def transform(self, results: dict) -> dict:
        """Load the frames listed in ``results['img_path']``.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: ``results`` with ``img``, ``img_shape`` and ``ori_shape``.
        """
        paths = _require_frame_list(results, 'img_path', 'LoadRVOSFrames')
        video_id = results.get('video_id', '?')
        where = repr(video_id)
        if results.get('exp_id') is not None:
            where += f" (expression {results['exp_id']!r})"
        imgs = [self._load_one(path, where) for path in paths]
        shapes = [tuple(img.shape[:2]) for img in imgs]
        for path, shape in zip(paths, shapes):
            if shape != shapes[0]:
                raise ValueError(
                    f'Frame {path!r} of video {video_id!r} has size {shape} '
                    f'but frame {paths[0]!r} has size {shapes[0]}; all '
                    'frames of a video must share one size.')
        results['img'] = imgs
        results['img_shape'] = list(shapes)
        results['ori_shape'] = list(shapes)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', "
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')


def check_bgr_frames(frames: Sequence, where: str = '') -> None:
    """Check that ``frames`` are uint8 (H, W, 3) arrays of one size.

    Args:
        frames (Sequence): The frames.
        where (str): Prefix of the messages (e.g. ``'inference_clip: '``).

    Raises:
        ValueError: Names the first bad frame, or the sizes found.
    """
    for i, img in enumerate(frames):
        if not isinstance(img, np.ndarray) or img.ndim != 3 \
                or img.shape[2] != 3 or img.dtype != np.uint8:
            what = f'{img.dtype} {img.shape}' if isinstance(
                img, np.ndarray) else type(img).__name__
            raise ValueError(f'{where}frame {i} must be a uint8 (H, W, 3) '
                             f'BGR image, got {what}')
    shapes = {tuple(img.shape[:2]) for img in frames}
    if len(shapes) > 1:
        raise ValueError(f'{where}frames differ in size: {sorted(shapes)}')


@TRANSFORMS.register_module()
class LoadRVOSFramesFromNDArray(BaseTransform):
    """Take the frames of a clip from memory instead of files (the
    counterpart of :class:`LoadRVOSFrames` for
    :func:`dmformer.apis.inference_clip`, like mmdet's
    ``LoadImageFromNDArray``).

    Required Keys:

    - img (list[np.ndarray]): uint8 BGR (H, W, 3) frames of one size.

    Added Keys:

    - img_shape (list[tuple[int, int]]), ori_shape (list[tuple[int, int]])
    - frame_id (list[str]): ``'00000'``, ``'00001'``... unless given.

    Args:
        to_float32 (bool): Convert the frames to float32. Defaults to False.

    Raises:
        ValueError: A frame that is not a uint8 (H, W, 3) array, or frames
            of different sizes.
    """

    def __init__(self, to_float32: bool = False) -> None:
        self.to_float32 = to_float32

    def transform(self, results: dict) -> dict:
        """Check the in-memory frames and add their shapes.

        Args:
            results (dict): With ``img``, a list of frames.

        Returns:
            dict: ``results`` with ``img_shape``, ``ori_shape``, ``frame_id``.
        """
        imgs = _require_frame_list(results, 'img', 'LoadRVOSFramesFromNDArray')
        check_bgr_frames(imgs)
        shapes = [tuple(img.shape[:2]) for img in imgs]
        if self.to_float32:
            imgs = [img.astype(np.float32) for img in imgs]
        results['img'] = imgs
        results['img_shape'] = list(shapes)
        results['ori_shape'] = list(shapes)
        results.setdefault('frame_id', [f'{i:05d}' for i in range(len(imgs))])
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_float32={self.to_float32})'


def read_index_png(path: str,
                   backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an object-index PNG (palette 'P' or grey 'L') as an array.

    Args:
        path (str): Path of the PNG.
        backend_args (dict, optional): File backend arguments.

    Returns:
        np.ndarray: (H, W) integer array of object ids (0 = background).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not an image or has colour channels.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'Annotation file {path!r} does not exist.') from e
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            arr = np.array(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(
            f'Cannot read annotation {path!r} (corrupt or not a PNG): '
            f'{e}') from e
    if arr.ndim != 2:
        raise ValueError(
            f'Annotation {path!r} has mode {mode!r} with shape {arr.shape}; '
            'expected a single-channel palette (P) or grey (L) PNG of '
            'object ids.')
    return arr


def set_one_instance_annotations(results: dict,
                                 frame_masks: Sequence[np.ndarray]) -> None:
    """Store one referred instance per frame in ``results``: ``gt_masks``
    (BitmapMasks (1, H, W)), ``gt_bboxes`` (the tight box, x2/y2 = last
    index + 1 as mmdet's :meth:`HorizontalBoxes.from_instance_masks`;
    zeros when empty) and ``gt_valid`` (whether the mask is non-empty).

    Args:
        results (dict): Result dict to update.
        frame_masks (Sequence[np.ndarray]): One bool or uint8 (H, W) mask
            per frame.
    """
    masks, bboxes, valid = [], [], []
    for mask in frame_masks:
        h, w = mask.shape
        bitmap = BitmapMasks(mask[None].astype(np.uint8), h, w)
        bboxes.append(HorizontalBoxes.from_instance_masks(bitmap))
        masks.append(bitmap)
        valid.append(bool(mask.any()))
    results['gt_masks'] = masks
    results['gt_bboxes'] = bboxes
    results['gt_valid'] = valid


@TRANSFORMS.register_module()
class LoadRVOSAnnotations(BaseTransform):
    """Load the mask, box and presence flag of the referred object.

    The annotation of a frame is a palette PNG whose pixel values are object
    ids (Ref-YouTube-VOS / DAVIS format); the object mask is
    ``png == obj_id``. The box is the tight box of the mask with
    mmdet's pixel-edge convention (``x2 = last column + 1``, as
    :meth:`HorizontalBoxes.from_instance_masks`); the official code uses the
    last column itself, i.e. boxes 1 px smaller.

    Required Keys:

    - mask_path (list[str]), obj_id (int)
    - ori_shape (list[tuple[int, int]], optional): checked against the masks.

    Added Keys:

    - gt_masks (list[BitmapMasks]): one instance (1, H, W) per frame.
    - gt_bboxes (list[HorizontalBoxes]): (1, 4) per frame, zeros if absent.
    - gt_valid (list[bool]): whether the object is present in the frame.

    Args:
        check_absent_object (bool): If the object is absent from all loaded
            frames, scan the remaining masks of the video (``ann_dir`` /
            ``video_frame_ids``) for it. The result is cached per (video,
            object). Defaults to True.
        skip_absent_object (bool): What to do with an object found in no
            mask of its video by ``check_absent_object``: True returns None,
            so that a training dataset draws another sample (the official
            loader's behaviour), with one warning per (video, object);
            False raises (for evaluation, where it means a wrong
            ``obj_id``). Defaults to True.
        skip_unannotated (bool): Leave samples without ground truth (no
            ``mask_path``, i.e. the split has no Annotations folder, or no
            ``obj_id``) unchanged instead of raising, e.g. for the
            Ref-YouTube-VOS valid split whose masks are not public.
            Defaults to False.
        with_seg_map (bool): Also keep every frame's whole object-id map
            as ``gt_seg_map`` (list of (H, W) uint8, 0 = background; the
            mmdet key, so resizes and crops treat it as a label map), for
            training losses that look at all the objects of a clip.
            Defaults to False.
        backend_args (dict, optional): File backend arguments.
            Defaults to None.

    Raises:
        ValueError: No annotations (unless ``skip_unannotated``), unknown
            ``obj_id``, a mask whose size differs from its frame, or (unless
            ``skip_absent_object``) an object absent from every mask of the
            video.
        FileNotFoundError: A mask file does not exist.
    """

    def __init__(self,
                 check_absent_object: bool = True,
                 skip_absent_object: bool = True,
                 skip_unannotated: bool = False,
                 with_seg_map: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        self.check_absent_object = check_absent_object
        self.skip_absent_object = skip_absent_object
        self.skip_unannotated = skip_unannotated
        self.with_seg_map = with_seg_map
        self.backend_args = backend_args
        self._checked: Set[Tuple[str, int]] = set()
        self._absent: Set[Tuple[str, int]] = set()

    def _object_in_video(self, results: dict,
                         loaded: Sequence[str]) -> bool:
        """Whether the object is in any mask of its video; raise if not
        and not ``skip_absent_object``."""
        video_id, obj_id = results.get('video_id', '?'), results['obj_id']
        if (video_id, obj_id) in self._checked:
            return True
        if (video_id, obj_id) in self._absent:
            return False
        ann_dir = results.get('ann_dir')
        frame_ids = results.get('video_frame_ids')
        suffix = results.get('ann_suffix', '.png')
        if ann_dir is not None and frame_ids is not None:
            for frame_id in frame_ids:
                path = fileio.join_path(ann_dir, frame_id + suffix)
                if path in loaded:
                    continue
                if (read_index_png(path, self.backend_args) == obj_id).any():
                    self._checked.add((video_id, obj_id))
                    return True
        where = ann_dir if ann_dir is not None else list(loaded)
        message = (f'Object {obj_id} of expression '
                   f'{results.get("exp_id", "?")!r} does not appear in any '
                   f'mask of video {video_id!r} ({where})')
        if not self.skip_absent_object:
            raise ValueError(f'{message}: unknown obj_id.')
        self._absent.add((video_id, obj_id))
        print_log(
            f'{message}; its samples are skipped and others drawn instead '
            f'(LoadRVOSAnnotations: {len(self._absent)} such objects so '
            'far in this process).',
            logger='current',
            level=logging.WARNING)
        return False

    def transform(self, results: dict) -> dict:
        """Load the per-frame annotations of the referred object.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict or None: ``results`` with ``gt_masks``, ``gt_bboxes``,
            ``gt_valid``; None if the object is in no mask of its video and
            ``skip_absent_object``.
        """
        video_id = results.get('video_id', '?')
        unannotated = results.get('mask_path') is None or int(
            results.get('obj_id', -1)) <= 0
        if unannotated and self.skip_unannotated:
            return results
        if results.get('mask_path') is None:
            raise ValueError(
                f'Video {video_id!r} has no annotations (no mask_path; the '
                'split has no Annotations folder), so LoadRVOSAnnotations '
                'cannot be used on it.')
        paths = _require_frame_list(results, 'mask_path',
                                    'LoadRVOSAnnotations')
        obj_id = int(results.get('obj_id', -1))
        if obj_id <= 0:
            raise ValueError(
                f'Expression {results.get("exp_id", "?")!r} of video '
                f'{video_id!r} has no valid obj_id ({obj_id}); its masks '
                'cannot be loaded.')
        ori_shapes = results.get('ori_shape')
        img_paths = results.get('img_path', [None] * len(paths))
        frame_masks, seg_maps = [], []
        for i, path in enumerate(paths):
            ids = read_index_png(path, self.backend_args)
            if isinstance(ori_shapes, (list, tuple)) and \
                    tuple(ori_shapes[i]) != ids.shape:
                raise ValueError(
                    f'Mask {path!r} has size {ids.shape} but its frame '
                    f'{img_paths[i]!r} has size {tuple(ori_shapes[i])}.')
            frame_masks.append(ids == obj_id)
            if self.with_seg_map:
                if ids.max(initial=0) > 255:
                    raise ValueError(f'Mask {path!r} has object ids above '
                                     '255; with_seg_map keeps uint8 maps.')
                seg_maps.append(ids.astype(np.uint8))
        set_one_instance_annotations(results, frame_masks)
        if self.with_seg_map:
            results['gt_seg_map'] = seg_maps
        if self.check_absent_object and not any(results['gt_valid']) and \
                not self._object_in_video(results, paths):
            return None
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'check_absent_object={self.check_absent_object}, '
                f'skip_absent_object={self.skip_absent_object}, '
                f'skip_unannotated={self.skip_unannotated}, '
                f'with_seg_map={self.with_seg_map}, '
                f'backend_args={self.backend_args})')


def decode_coco_segmentation(segmentation: Any,
                             height: int,
                             width: int,
                             where: str = 'annotation') -> np.ndarray:
    """Decode a COCO segmentation into a binary mask with pycocotools.

    Args:
        segmentation (list | dict): Polygons (a list of flat ``[x1, y1, x2,
            y2, ...]`` lists), an uncompressed RLE (``counts`` is a list)
            or a compressed RLE (``counts`` is a str or bytes).
        height (int): Image height.
        width (int): Image width.
        where (str): Description of the annotation for error messages.

    Returns:
        np.ndarray: uint8 mask of shape (height, width), 1 inside the
        object (the union of its polygons).

    Raises:
        ValueError: Malformed segmentation or an RLE of another size.
    """
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            raise ValueError(f'{where}: segmentation has no polygon with at '
                             f'least 3 points: {segmentation!r:.200}')
        rles = coco_mask.frPyObjects(polygons, height, width)
        rle = coco_mask.merge(rles)
    elif isinstance(segmentation, dict) and 'counts' in segmentation:
        size = segmentation.get('size')
        if size is None or list(size) != [height, width]:
            raise ValueError(f'{where}: RLE size {size} does not match the '
                             f'image size {[height, width]}.')
        if isinstance(segmentation['counts'], list):
            rle = coco_mask.frPyObjects(segmentation, height, width)
        else:
            counts = segmentation['counts']
            if isinstance(counts, str):
                counts = counts.encode('ascii')
            rle = dict(size=[height, width], counts=counts)
    else:
        raise ValueError(f'{where}: unsupported segmentation of type '
                         f'{type(segmentation).__name__}; expected polygons '
                         'or an RLE dict.')
    mask = coco_mask.decode(rle)
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    return mask.astype(np.uint8)


# MeViS ``mask_dict.json`` files already read by this process, by path.
_MASK_DICTS: Dict[str, dict] = {}


def load_mask_dict(path: str, backend_args: Optional[dict] = None) -> dict:
    """Read a MeViS ``mask_dict.json`` once per process.

    The file maps ``str(anno_id)`` (one object track) to a list with one
    COCO RLE (or ``null`` where the object is absent) per frame of its
    video, in the order of the video's sorted frame names. It is parsed on
    first use and kept, so the dataset (which validates it when it builds
    its data list) and the loading transform share one copy; dataloader
    workers forked after the dataset was built inherit it.

    Args:
        path (str): Path of ``mask_dict.json``.
        backend_args (dict, optional): File backend arguments.

    Returns:
        dict: ``{anno_id: [rle or None, ...]}``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not JSON or not a dict of lists.
    """
    if path in _MASK_DICTS:
        return _MASK_DICTS[path]
    if not fileio.exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'Mask file {path!r} does not exist.')
    try:
        content = fileio.load(
            path, file_format='json', backend_args=backend_args)
    except ValueError as e:
        raise ValueError(f'Mask file {path!r} is not valid JSON: {e}') from e
    bad = None if isinstance(content, dict) else type(content).__name__
    if bad is None:
        bad = next((f'anno_id {k!r}' for k, v in content.items()
                    if not isinstance(v, list)), None)
    if bad is not None:
        raise ValueError(
            f'Mask file {path!r} must map anno ids to per-frame lists of '
            f'RLEs; found {bad}.')
    _MASK_DICTS[path] = content
    return content


@TRANSFORMS.register_module()
class LoadMeViSAnnotations(BaseTransform):
    """Load the target of a MeViS expression: the **union** of the masks of
    all the objects it refers to.

    A MeViS expression may refer to several objects ("the two birds flying
    away"); single-output models are trained and scored on the union of
    their masks (the MeViS protocol). Per sampled frame the RLEs of the
    expression's ``anno_ids`` are read from the split's ``mask_dict.json``
    (:func:`load_mask_dict`) and OR-ed; ``null`` entries (object absent)
    add nothing, so a frame where all the objects are absent has an empty
    mask, and an expression that refers to no object (empty ``anno_ids``
    in a split with a mask file) has an empty mask in every frame. The
    output is the one-instance format of :class:`LoadRVOSAnnotations`, so
    everything downstream is shared with Ref-YouTube-VOS.

    Required Keys:

    - mask_file (str or None), anno_ids (list[str], empty for no target)
    - frame_idx (list[int]): indices into the video's sorted frames.
    - ori_shape (list[tuple[int, int]]): frame sizes (RLEs must match).
    - video_id, exp_id, frame_id (for error messages)

    Added Keys:

    - gt_masks (list[BitmapMasks]): one instance (1, H, W) per frame.
    - gt_bboxes (list[HorizontalBoxes]): (1, 4) per frame, the box of the
      union, zeros if empty.
    - gt_valid (list[bool]): whether the union is non-empty.

    Args:
        skip_unannotated (bool): Leave samples without ground truth (the
            ``valid`` split has no ``mask_dict.json``) unchanged instead of
            raising. Defaults to False.
        backend_args (dict, optional): File backend arguments.
            Defaults to None.

    Raises:
        ValueError: No mask file (unless ``skip_unannotated``), no
            ``anno_ids`` key, an anno id missing from the mask file, a
            track shorter than the video, or an RLE whose size differs from
            its frame; the message names the video, expression, frame and
            file.
    """

    def __init__(self,
                 skip_unannotated: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        self.skip_unannotated = skip_unannotated
        self.backend_args = backend_args

    def _frame_mask(self, tracks: dict, anno_ids: Sequence[str],
                    frame_idx: int, shape: Tuple[int, int],
                    where: str) -> np.ndarray:
        """Union of the objects' masks in one frame, uint8 (H, W)."""
        union = np.zeros(shape, dtype=np.uint8)
        for anno_id in anno_ids:
            track = tracks.get(str(anno_id))
            if track is None:
                raise ValueError(f'{where}: anno_id {anno_id} is not in the '
                                 'mask file.')
            if frame_idx >= len(track):
                raise ValueError(
                    f'{where}: anno_id {anno_id} has masks for '
                    f'{len(track)} frames, frame index {frame_idx} '
                    'requested.')
            if track[frame_idx] is not None:
                union |= decode_coco_segmentation(
                    track[frame_idx], shape[0], shape[1],
                    f'{where}, anno_id {anno_id}')
        return union

    def transform(self, results: dict) -> dict:
        """Load the per-frame union masks of the referred objects.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: ``results`` with ``gt_masks``, ``gt_bboxes``, ``gt_valid``.
        """
        video_id = results.get('video_id', '?')
        exp_id = results.get('exp_id', '?')
        mask_file = results.get('mask_file')
        if mask_file is None:
            if self.skip_unannotated:
                return results
            raise ValueError(
                f'Expression {exp_id!r} of video {video_id!r} has no ground '
                'truth (the split has no mask_dict.json), so '
                'LoadMeViSAnnotations cannot be used on it.')
        anno_ids = results.get('anno_ids')
        if anno_ids is None:
            raise ValueError(
                f'Expression {exp_id!r} of video {video_id!r} has no '
                f"'anno_ids' (the objects of mask file {mask_file!r} it "
                'refers to; MeViSDataset sets them).')
        tracks = load_mask_dict(mask_file, self.backend_args)
        indices = _require_frame_list(results, 'frame_idx',
                                      'LoadMeViSAnnotations')
        shapes = _require_frame_list(results, 'ori_shape',
                                     'LoadMeViSAnnotations')
        frame_ids = results.get('frame_id', indices)
        frame_masks = []
        for i, idx in enumerate(indices):
            where = (f'video {video_id!r}, expression {exp_id!r}, frame '
                     f'{frame_ids[i]!r} of mask file {mask_file!r}')
            frame_masks.append(
                self._frame_mask(tracks, anno_ids, int(idx), tuple(shapes[i]),
                                 where))
        set_one_instance_annotations(results, frame_masks)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'skip_unannotated={self.skip_unannotated}, '
                f'backend_args={self.backend_args})')


# mask file formats understood by LoadA2DAnnotations
A2D_H5 = 'a2d_h5'
JHMDB_MAT = 'jhmdb_mat'


def load_a2d_instance_masks(path: str) -> Tuple[np.ndarray, List[int]]:
    """Read an A2D ``a2d_annotation_with_instances/<video>/<frame>.h5`` file.

    The files are MATLAB v7.3 (HDF5) files: ``reMask`` holds the instance
    masks stored column-major, i.e. (N, W, H), or (W, H) with a single
    instance, and ``instance`` the N instance ids (MTTR's
    ``a2d_sentences_dataset.py`` reads them the same way).

    Args:
        path (str): Local path of the ``.h5`` file (h5py needs a file).

    Returns:
        tuple[np.ndarray, list[int]]: bool masks of shape (N, H, W) and the
        N instance ids.

    Raises:
        ImportError: h5py is not installed.
        FileNotFoundError: The file does not exist.
        ValueError: The file is not HDF5, misses ``reMask``/``instance`` or
            holds a different number of masks and ids.
    """
    try:
        import h5py
    except ImportError as e:
        raise ImportError('Reading the A2D-Sentences masks (.h5) needs h5py: '
                          '`pip install h5py`.') from e
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'A2D mask annotation {path!r} does not exist.')
    try:
        with h5py.File(path, 'r') as f:
            missing = [k for k in ('reMask', 'instance') if k not in f]
            if missing:
                raise ValueError(f'A2D mask annotation {path!r} has no '
                                 f'dataset {missing} (keys: {sorted(f)}).')
            masks = np.array(f['reMask'])
            ids = np.array(f['instance']).reshape(-1)
    except OSError as e:
        raise ValueError(f'Cannot read A2D mask annotation {path!r} (not an '
                         f'HDF5 file): {e}') from e
    if masks.ndim == 2:  # a single instance is stored without the N axis
        masks = masks[None]
    if masks.ndim != 3 or len(masks) != len(ids):
        raise ValueError(
            f'A2D mask annotation {path!r}: reMask of shape {masks.shape} '
            f'does not hold one mask per instance id {ids.tolist()}.')
    # (N, W, H) -> (N, H, W): MATLAB arrays are stored column-major
    masks = masks.transpose(0, 2, 1) > 0
    return masks, [int(i) for i in ids]


def load_jhmdb_puppet_mask(path: str, frame_index: int) -> np.ndarray:
    """Read one frame of a JHMDB ``puppet_mask.mat``.

    Args:
        path (str): Local path of ``puppet_mask.mat`` (MATLAB v5, key
            ``part_mask`` of shape (H, W, T)).
        frame_index (int): 0-based frame index along T.

    Returns:
        np.ndarray: bool mask of shape (H, W).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be read, has no ``part_mask`` of 3
            dimensions, or ``frame_index`` is out of range.
    """
    import scipy.io
    if not osp.isfile(path):
        raise FileNotFoundError(f'JHMDB puppet mask {path!r} does not exist.')
    try:
        content = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types on bad files
        raise ValueError(f'Cannot read JHMDB puppet mask {path!r} (not a '
                         f'MATLAB file): {e}') from e
    part_mask = content.get('part_mask')
    if part_mask is None or np.ndim(part_mask) != 3:
        raise ValueError(f'JHMDB puppet mask {path!r} has no (H, W, T) '
                         '"part_mask" array.')
    if not 0 <= frame_index < part_mask.shape[2]:
        raise ValueError(
            f'Frame index {frame_index} (0-based) is out of range for JHMDB '
            f'puppet mask {path!r} with {part_mask.shape[2]} frames.')
    return part_mask[:, :, frame_index] > 0


@TRANSFORMS.register_module()
class LoadA2DAnnotations(BaseTransform):
    """Load the mask of the annotated frame of an A2D / JHMDB sample.

    The mask of the referred actor is read from the sample's ``mask_file``:
    an A2D ``.h5`` file (``mask_format='a2d_h5'``, the mask whose instance
    id is ``obj_id``) or a JHMDB ``puppet_mask.mat`` (``'jhmdb_mat'``, frame
    ``mask_frame_idx``). The frames of ``valid_indices`` get that mask, the
    other frames an all-zero mask; boxes are tight boxes with mmdet's
    pixel-edge convention (as :class:`LoadRVOSAnnotations`) and zeros where
    the mask is empty, ``gt_valid`` is True where the mask is not empty.

    Required Keys:

    - mask_file (str), mask_format (str), obj_id (int),
      mask_frame_idx (int, JHMDB), valid_indices (list[int])
    - img_path (list[str]), ori_shape (list[tuple[int, int]], optional):
      the masks must have the size of the frames.

    Added Keys:

    - gt_masks (list[BitmapMasks]), gt_bboxes (list[HorizontalBoxes]),
      gt_valid (list[bool]); one entry per frame.

    Args:
        backend_args (dict, optional): File backend arguments; the mask
            file is fetched to a local temporary file for non-local
            backends. Defaults to None.

    Raises:
        FileNotFoundError: The mask file does not exist.
        ValueError: The instance id is not in the ``.h5`` file, the mask
            size differs from the frames, or a bad mask file.
    """

    def __init__(self, backend_args: Optional[dict] = None) -> None:
        self.backend_args = backend_args

    def _read_mask(self, results: dict, path: str) -> np.ndarray:
        """Read the (H, W) bool mask of the annotated frame from ``path``."""
        fmt = results.get('mask_format')
        if fmt == A2D_H5:
            masks, ids = load_a2d_instance_masks(path)
            obj_id = int(results.get('obj_id', -1))
            if obj_id not in ids:
                raise ValueError(
                    f'Instance {obj_id} of the expression '
                    f'{results.get("text", "")!r} is not in A2D mask '
                    f'annotation {path!r} (instances: {ids}).')
            return masks[ids.index(obj_id)]
        if fmt == JHMDB_MAT:
            return load_jhmdb_puppet_mask(path, int(results['mask_frame_idx']))
        raise ValueError(f'Unknown mask_format {fmt!r} for {path!r}; '
                         f"expected '{A2D_H5}' or '{JHMDB_MAT}'.")

    def _load(self, results: dict) -> np.ndarray:
        """Read the mask, fetching it locally for remote backends."""
        path = results.get('mask_file')
        if path is None:
            raise ValueError(f'Sample of video '
                             f'{results.get("video_id", "?")!r} has no '
                             'mask_file.')
        backend = fileio.get_file_backend(path, backend_args=self.backend_args)
        if isinstance(backend, fileio.LocalBackend):
            return self._read_mask(results, path)
        with backend.get_local_path(path) as local:
            return self._read_mask(results, str(local))

    def transform(self, results: dict) -> dict:
        """Build the per-frame annotations.

        Args:
            results (dict): Result dict in the dict-of-lists convention.

        Returns:
            dict: ``results`` with ``gt_masks``, ``gt_bboxes`` and
            ``gt_valid``.
        """
        img_paths = results.get('img_path')
        if not isinstance(img_paths, (list, tuple)):
            raise KeyError('LoadA2DAnnotations needs the per-frame img_path '
                           'list; run A2DFrameSample first.')
        num_frames = len(img_paths)
        valid_indices = [int(i) for i in results.get('valid_indices', [])]
        if not valid_indices or not all(0 <= i < num_frames
                                        for i in valid_indices):
            raise ValueError(f'valid_indices {valid_indices} do not index a '
                             f'clip of {num_frames} frames.')
        mask = self._load(results)
        ori_shapes = results.get('ori_shape')
        if isinstance(ori_shapes, (list, tuple)):
            for i in valid_indices:
                if tuple(ori_shapes[i]) != mask.shape:
                    raise ValueError(
                        f'Mask of {results["mask_file"]!r} has size '
                        f'{mask.shape} but its frame {img_paths[i]!r} has '
                        f'size {tuple(ori_shapes[i])}.')
        h, w = mask.shape
        empty = np.zeros((1, h, w), dtype=np.uint8)
        annotated = mask[None].astype(np.uint8)
        masks, bboxes, valid = [], [], []
        for i in range(num_frames):
            bitmap = BitmapMasks(annotated if i in valid_indices else empty, h,
                                 w)
            # tight box, x2/y2 = last index + 1 (mmdet convention)
            bboxes.append(HorizontalBoxes.from_instance_masks(bitmap))
            masks.append(bitmap)
            valid.append(i in valid_indices and bool(mask.any()))
        results['gt_masks'] = masks
        results['gt_bboxes'] = bboxes
        results['gt_valid'] = valid
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(backend_args={self.backend_args})'


@TRANSFORMS.register_module()
class LoadRefCOCOAnnotations(BaseTransform):
    """Decode the referred object of a RefCOCO sample.

    The mask is decoded from the COCO polygons / RLE with pycocotools (the
    union of the sample's annotations), the box is the annotation box
    clipped to the image (like the official ``ConvertCocoPolysToMask``;
    ``box_from_mask=True`` uses the tight box of the mask instead). The
    result follows the one-instance-per-frame convention of
    :class:`~dmformer.datasets.transforms.LoadRVOSAnnotations`.

    Required Keys:

    - gt_anns (list[dict]): ``bbox`` (xyxy) and ``segmentation``.
    - height, width (int)
    - ori_shape (list[tuple[int, int]], optional): checked against
      (height, width).

    Added Keys:

    - gt_masks (list[BitmapMasks]): one frame, one instance (1, H, W).
    - gt_bboxes (list[HorizontalBoxes]): one frame, (1, 4).
    - gt_valid (list[bool]): whether the mask is not empty.

    Args:
        box_from_mask (bool): Whether to use the tight box of the decoded
            mask instead of the annotated box. Defaults to False.
    """

    def __init__(self, box_from_mask: bool = False) -> None:
        self.box_from_mask = box_from_mask

    def transform(self, results: dict) -> dict:
        """Decode the mask and box.

        Args:
            results (dict): Result dict of :class:`RefCOCODataset`.

        Returns:
            dict: ``results`` with ``gt_masks``, ``gt_bboxes`` and
            ``gt_valid`` (lists of one frame).
        """
        height, width = int(results['height']), int(results['width'])
        where = (f'expression {results.get("exp_id", "?")!r} of '
                 f'{results.get("video_id", "?")!r}')
        ori_shape = results.get('ori_shape')
        if isinstance(ori_shape, (list, tuple)) and len(ori_shape) and \
                isinstance(ori_shape[0], (list, tuple)):
            ori_shape = ori_shape[0]
        if ori_shape is not None and tuple(ori_shape) != (height, width):
            raise ValueError(
                f'Image {results.get("img_path")!r} of {where} has size '
                f'{tuple(ori_shape)} but the annotation file says '
                f'{(height, width)}.')
        anns: Sequence[dict] = results.get('gt_anns') or []
        if not anns:
            raise ValueError(f'{where} has no annotation (gt_anns).')
        mask = np.zeros((height, width), dtype=np.uint8)
        boxes = []
        for ann in anns:
            mask |= decode_coco_segmentation(ann['segmentation'], height,
                                             width, where)
            boxes.append(np.asarray(ann['bbox'], dtype=np.float32))
        bitmap = BitmapMasks(mask[None], height, width)
        valid = bool(mask.any())
        if self.box_from_mask:
            box = bitmap.get_bboxes('hbox')
        else:
            arr = np.stack(boxes)
            # enclosing box of the (usually single) annotation
            box = HorizontalBoxes(
                np.concatenate([arr[:, :2].min(0), arr[:, 2:].max(0)])[None])
        if not valid:
            box = HorizontalBoxes(np.zeros((1, 4), dtype=np.float32))
        results['gt_masks'] = [bitmap]
        results['gt_bboxes'] = [box]
        results['gt_valid'] = [valid]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'box_from_mask={self.box_from_mask})')


__all__ = [
    'RefCOCODataset', 'LoadRefCOCOAnnotations', 'decode_coco_segmentation'
]


def _word_spans(text: str) -> List[Tuple[int, int]]:
    """Character spans of the whitespace-separated words of ``text``."""
    spans, start = [], None
    for i, ch in enumerate(text):
        if ch.isspace():
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        spans.append((start, len(text)))
    return spans


def map_char_span(span: Sequence[int], src_text: str,
                  dst_text: str) -> Tuple[int, int]:
    """Map a character span of ``src_text`` onto ``dst_text``.

    The texts must have the same number of whitespace-separated words (e.g.
    ``dst_text`` is ``src_text`` with 'left' and 'right' swapped by a flip);
    the span is mapped word by word, keeping offsets inside a word (clamped
    to the word length).

    Args:
        span (Sequence[int]): ``[start, end)`` in ``src_text``.
        src_text (str): Text the span refers to.
        dst_text (str): Text to map the span onto.

    Returns:
        tuple[int, int]: ``[start, end)`` in ``dst_text``.

    Raises:
        ValueError: The texts have different word counts or the span covers
            no word.
    """
    if src_text == dst_text:
        return int(span[0]), int(span[1])
    src_words, dst_words = _word_spans(src_text), _word_spans(dst_text)
    if len(src_words) != len(dst_words):
        raise ValueError(
            f'Cannot map the span {tuple(span)} of {src_text!r} onto '
            f'{dst_text!r}: different numbers of words.')
    start, end = int(span[0]), int(span[1])
    first = next((i for i, (_, e) in enumerate(src_words) if e > start), None)
    inside = [i for i, (s, _) in enumerate(src_words) if s < end]
    last = inside[-1] if inside else None
    if first is None or last is None or last < first:
        raise ValueError(f'Span {tuple(span)} covers no word of '
                         f'{src_text!r}.')
    (s_src, _), (ds, de) = src_words[first], dst_words[first]
    new_start = min(ds + max(start - s_src, 0), de)
    (ls_src, le_src), (ls, le) = src_words[last], dst_words[last]
    new_end = le if end >= le_src else min(ls + (end - ls_src), le)
    return new_start, max(new_end, new_start + 1)


@TRANSFORMS.register_module()
class LoadSubjectSpan(BaseTransform):
    """Set the subject-phrase label of the caption (the perceptron target).

    The label is the character span ``[start, end)`` of the subject noun
    phrase in ``results['text']``:

    - **teacher**: a stored label (``results['subject_span']``, read by the
      dataset from ``subject_labels.json``; a span of ``ori_text``), mapped
      onto the current text if a flip swapped 'left'/'right';
    - **parser** fallback: the first noun chunk of the sentence (the default
      of the official GLIP-L voting when no chunk wins), from
      ``results['noun_chunks']`` if :class:`ExtractNounChunks` ran before,
      otherwise computed with
      :func:`dmformer.utils.noun_chunks.extract_noun_chunks`. A caption with
      no noun chunk gets the whole sentence.

    Run it after any transform that rewrites ``text`` (flip).

    Required Keys:

    - text (str)
    - ori_text (str, optional), subject_span (optional), noun_chunks
      (optional)

    Added Keys:

    - gt_subject_span (np.ndarray): int64, (2,).
    - subject_source (str): ``'teacher'`` or ``'parser'``.

    Args:
        use_stored_labels (bool): Whether to use stored teacher labels when
            present. False always uses the parser fallback.
            Defaults to True.
    """

    def __init__(self, use_stored_labels: bool = True) -> None:
        self.use_stored_labels = use_stored_labels

    def transform(self, results: dict) -> dict:
        """Compute ``gt_subject_span``.

        Args:
            results (dict): Result dict.

        Returns:
            dict: ``results`` with ``gt_subject_span`` and
            ``subject_source``.
        """
        text = results['text']
        stored = results.get('subject_span')
        if self.use_stored_labels and stored is not None:
            span = map_char_span(stored, results.get('ori_text', text), text)
            source = 'teacher'
        else:
            chunks = results.get('noun_chunks')
            if chunks is None:
                from dmformer.utils.noun_chunks import extract_noun_chunks
                chunks = extract_noun_chunks(text)
            span = tuple(chunks[0]) if len(chunks) else (0, len(text))
            source = 'parser'
        results['gt_subject_span'] = np.asarray(span, dtype=np.int64)
        results['subject_source'] = source
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'use_stored_labels={self.use_stored_labels})')


__all__ = [
    'LoadRVOSFrames', 'LoadRVOSAnnotations', 'LoadSubjectSpan',
    'read_index_png', 'map_char_span'
]
