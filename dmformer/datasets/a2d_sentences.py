# Copyright (c) OpenMMLab. All rights reserved.
"""A2D-Sentences and JHMDB-Sentences with the ReferFormer protocol.

Both datasets annotate **one frame per sample**: a sample is a (video,
annotated frame, referred actor, expression) tuple. As in ReferFormer's
``datasets/a2d.py`` / ``datasets/jhmdb.py`` (adapted from MTTR), a clip of
``num_frames`` frames is built around the annotated frame
(:class:`A2DFrameSample`), the ground truth exists on that frame only
(:class:`LoadA2DAnnotations`), and its position in the clip is stored as the
video-level key ``valid_indices`` (list[int]) that
:class:`~dmformer.datasets.transforms.PackRVOSInputs` packs into the
metainfo when listed in its ``meta_keys``. The other frames carry all-zero
masks and ``valid=False``; the model (``DMFormer._select_valid_frames``) and
:class:`~dmformer.evaluation.A2DSentencesMetric` only use the frames of
``valid_indices``.

Sample lists (``ann_file``) are the JSON files of MTTR that ReferFormer
uses, produced from the official release by
``tools/dataset_converters/a2d_sentences_to_json.py``:

- A2D-Sentences ``a2d_sentences_single_frame_{train,test}_annotations.json``:
  ``[[query, video_id, frame_idx, instance_id], ...]`` with the 1-based
  frame number of the annotated frame (the name of its
  ``<frame_idx:05d>.h5`` file) and the A2D instance id.
- JHMDB-Sentences ``jhmdb_sentences_samples_metadata.json``:
  ``[[video_id, frame_path, mask_path, video_total_frames, query], ...]``
  where ``frame_path`` ends in ``Rename_Images/<class>/<video>/<frame>.png``
  (1-based frame number) and ``mask_path`` in
  ``puppet_mask/<class>/<video>/puppet_mask.mat``; the leading directories
  (``./jhmdb_sentences/`` in MTTR's file) are ignored.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine import fileio
from mmengine.logging import MMLogger

from dmformer.registry import DATASETS, TRANSFORMS
from .base_rvos_dataset import BaseRVOSDataset
from .transforms.frame_sampling import RVOSFrameSample
from .transforms.text import clean_caption

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
class A2DFrameSample(RVOSFrameSample):
    """Sample a clip around the annotated frame (ReferFormer's A2D/JHMDB
    samplers) and record its position in ``valid_indices``.

    - ``mode='train'``: the sampler of Ref-YouTube-VOS
      (:meth:`RVOSFrameSample.sample_indices`) with the annotated frame as
      anchor: the anchor, two local frames within ``max_skip`` and
      ``num_frames - 3`` global frames, sorted.
    - ``mode='test'``: the window ``[f - num_frames // 2, f + (num_frames +
      1) // 2)`` centred on the annotated frame ``f``, out-of-range indices
      replaced by the first / last frame (edge padding).

    ``valid_indices`` is ``[clip.index(f)]``, the first position of the
    annotated frame (a short video may repeat it).

    Required Keys:

    - video_frame_ids (list[str]), img_dir (str), img_suffix (str)
    - anchor_idx (int): index of the annotated frame in ``video_frame_ids``.

    Added Keys:

    - frame_id, frame_idx, img_path (per-frame lists)
    - valid_indices (list[int])

    Args:
        num_frames (int): Clip length. Defaults to 5 (ReferFormer's
            ``--num_frames`` for training and evaluation).
        max_skip (int): Largest distance of the local frames in training.
            Defaults to 3.
        mode (str): ``'train'`` or ``'test'``. Defaults to 'train'.
    """

    def window_indices(self, video_length: int, center: int) -> List[int]:
        """Indices of the test window centred on ``center``.

        Args:
            video_length (int): Number of frames of the video.
            center (int): Index of the annotated frame.

        Returns:
            list[int]: ``num_frames`` sorted indices in ``[0, n)``.
        """
        if not 0 <= center < video_length:
            raise ValueError(f'annotated frame index {center} is out of '
                             f'range for a video of {video_length} frames')
        start = center - self.num_frames // 2
        return [
            min(max(i, 0), video_length - 1)
            for i in range(start, start + self.num_frames)
        ]

    def transform(self, results: dict) -> dict:
        """Sample the clip.

        Args:
            results (dict): Video-level data info of one sample.

        Returns:
            dict: ``results`` with the per-frame lists and
            ``valid_indices``.
        """
        frame_ids = results['video_frame_ids']
        anchor = results.get('anchor_idx')
        if not isinstance(anchor, int):
            raise ValueError(
                f'A2DFrameSample needs the index of the annotated frame '
                f'(anchor_idx) of video {results.get("video_id", "?")!r}, '
                f'got {anchor!r}.')
        if self.mode == 'test':
            inds = self.window_indices(len(frame_ids), anchor)
        else:
            inds = self.sample_indices(len(frame_ids), anchor)
        sampled = [frame_ids[i] for i in inds]
        results['frame_idx'] = inds
        results['frame_id'] = sampled
        suffix = results.get('img_suffix', '.jpg')
        results['img_path'] = [
            fileio.join_path(results['img_dir'], f + suffix) for f in sampled
        ]
        results['valid_indices'] = [inds.index(anchor)]
        return results


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


@DATASETS.register_module()
class A2DSentencesDataset(BaseRVOSDataset):
    """A2D-Sentences (`Gavrilyuk et al. <https://arxiv.org/abs/1803.07485>`_)
    with ReferFormer's protocol.

    Layout (the official release, the frames extracted from
    ``Release/clips320H/<video>.mp4`` by
    ``tools/dataset_converters/a2d_sentences_to_json.py --extract-frames``,
    frame ``k`` of the video saved as ``<k:05d>`` like the ``.h5``
    files)::

        data_root/
        ├── Release/frames/<video>/<frame:05d>.jpg
        ├── text_annotations/a2d_annotation_with_instances/<video>/
        │   └── <frame:05d>.h5
        ├── a2d_sentences_single_frame_train_annotations.json
        └── a2d_sentences_single_frame_test_annotations.json

    One data info per entry of ``ann_file`` (see the module docstring), with
    the keys of :class:`BaseRVOSDataset` (``obj_id`` = A2D instance id,
    ``exp_id`` = ``'<frame:05d>_<instance_id>'``, ``anchor_idx`` = index of
    the annotated frame in ``video_frame_ids``, ``ann_dir=None``) plus
    ``mask_file`` (the ``.h5`` file), ``mask_format`` (``'a2d_h5'``) and
    ``mask_frame_idx`` (None). Stored subject labels
    ``{video_id: {exp_id: [start, end]}}`` are read as in
    :class:`BaseRVOSDataset`.

    :meth:`load_data_list` lists the frame folder of each video (to know its
    length) and checks that the annotated frame and its ``.h5`` file exist;
    whether the instance id is in the ``.h5`` file is checked when loading
    (:class:`LoadA2DAnnotations`) and by the converter.

    Args:
        split (str): ``'train'`` or ``'test'``; fills ``ann_file`` and
            ``data_prefix`` unless given. Defaults to 'train'.
        **kwargs: ``ann_file``, ``data_prefix`` (``img_path``: frame
            folder, ``ann_path``: mask folder), ``img_suffix``,
            ``subject_label_file``, ``backend_args`` of
            :class:`BaseRVOSDataset` and the arguments of
            :class:`mmengine.dataset.BaseDataset`. ``meta_file``,
            ``exclude_ann_file``, ``sample_mode``, ``anchor_stride`` and
            ``expected_num_videos`` do not apply and are rejected.
    """

    SPLIT_DEFAULTS = dict(
        train=dict(
            ann_file='a2d_sentences_single_frame_train_annotations.json',
            data_prefix=dict(
                img_path='Release/frames',
                ann_path='text_annotations/a2d_annotation_with_instances')),
        test=dict(
            ann_file='a2d_sentences_single_frame_test_annotations.json',
            data_prefix=dict(
                img_path='Release/frames',
                ann_path='text_annotations/a2d_annotation_with_instances')))
    DEFAULT_IMG_SUFFIX = '.jpg'
    UNSUPPORTED_ARGS = ('meta_file', 'exclude_ann_file', 'sample_mode',
                        'anchor_stride', 'expected_num_videos')

    def __init__(self, split: str = 'train', **kwargs) -> None:
        if split not in self.SPLIT_DEFAULTS:
            raise ValueError(f'split must be one of '
                             f'{sorted(self.SPLIT_DEFAULTS)}, got {split!r}')
        bad = [k for k in self.UNSUPPORTED_ARGS if k in kwargs]
        if bad:
            raise ValueError(f'{self.__class__.__name__} does not take '
                             f'{bad}: one sample per annotated frame.')
        self.split = split
        for key, value in self.SPLIT_DEFAULTS[split].items():
            kwargs.setdefault(
                key,
                dict(value) if isinstance(value, dict) else value)
        kwargs.setdefault('img_suffix', self.DEFAULT_IMG_SUFFIX)
        self._frame_cache: Dict[str, List[str]] = {}
        super().__init__(**kwargs)

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    def _load_entries(self, length: int) -> list:
        """Load ``ann_file`` and check it is a list of ``length``-lists."""
        content = self._load_json(self.ann_file, 'Sample list')
        if not isinstance(content, list):
            raise ValueError(f'Sample list {self.ann_file!r} must be a JSON '
                             'list of samples.')
        for i, entry in enumerate(content):
            if not isinstance(entry, (list, tuple)) or len(entry) != length:
                raise ValueError(
                    f'Entry {i} of sample list {self.ann_file!r} must be a '
                    f'list of {length} fields, got {entry!r}.')
        return content

    def _video_frames(self, img_dir: str, where: str) -> List[str]:
        """Sorted frame names (without suffix) of a frame folder."""
        if img_dir in self._frame_cache:
            return self._frame_cache[img_dir]
        if not fileio.isdir(img_dir, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'{where}: frame folder {img_dir!r} does not exist.')
        names = fileio.list_dir_or_file(
            img_dir,
            list_dir=False,
            suffix=self.img_suffix,
            backend_args=self.backend_args)
        frames = sorted(n[:-len(self.img_suffix)] for n in names)
        if not frames:
            raise ValueError(f'{where}: frame folder {img_dir!r} has no '
                             f'{self.img_suffix!r} frame.')
        self._frame_cache[img_dir] = frames
        return frames

    def _check_file(self, path: str, what: str, where: str) -> None:
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(f'{where}: {what} {path!r} does not '
                                    'exist.')

    def _load_labels(self) -> Tuple[Optional[str], dict]:
        """Stored subject labels (path or None, content)."""
        label_path = self._resolve_subject_label_file()
        if label_path is None:
            return None, {}
        labels = self._load_json(label_path, 'Subject label file')
        if not isinstance(labels, dict):
            raise ValueError(f'Subject label file {label_path!r} must map '
                             'video ids to {exp_id: [start, end]}.')
        return label_path, labels

    def _make_info(self, video_id: str, exp_id: str, obj_id: int, text: str,
                   frame_ids: List[str], anchor: int, img_dir: str,
                   mask_file: str, mask_format: str,
                   mask_frame_idx: Optional[int], labels: dict,
                   label_path: Optional[str]) -> dict:
        """Assemble one data info (BaseRVOSDataset keys + mask keys)."""
        where = f'video {video_id!r}, expression {exp_id!r}'
        span = labels.get(video_id, {}).get(exp_id)
        if span is not None:
            span = self._check_span(span, text, where, label_path)
        return dict(
            video_id=video_id,
            exp_id=exp_id,
            obj_id=obj_id,
            text=text,
            ori_text=text,
            category=None,
            subject_span=span,
            video_frame_ids=frame_ids,
            video_length=len(frame_ids),
            img_dir=img_dir,
            ann_dir=None,
            img_suffix=self.img_suffix,
            ann_suffix=self.ann_suffix,
            anchor_idx=anchor,
            annotated_frame_id=frame_ids[anchor],
            mask_file=mask_file,
            mask_format=mask_format,
            mask_frame_idx=mask_frame_idx)

    def _log_summary(self, data_list: Sequence[dict],
                     label_path: Optional[str]) -> None:
        videos = {info['video_id'] for info in data_list}
        num_labelled = sum(info['subject_span'] is not None
                           for info in data_list)
        MMLogger.get_current_instance().info(
            f'{self.__class__.__name__} ({self.split}): {len(videos)} '
            f'videos, {len(data_list)} samples; subject labels of '
            f'{num_labelled} samples read from {label_path!r}, the others '
            'use the parser fallback (first noun chunk).')

    # ------------------------------------------------------------------
    # main entry
    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Build one data info per (video, annotated frame, instance,
        expression).

        Returns:
            list[dict]: The data infos (see the class docstring).

        Raises:
            FileNotFoundError: The sample list, a frame folder, an annotated
                frame or its ``.h5`` file is missing.
            ValueError: A malformed entry or an empty caption.
        """
        entries = self._load_entries(4)
        label_path, labels = self._load_labels()
        img_root = self.data_prefix.get('img_path', '')
        ann_root = self.data_prefix.get('ann_path', '')
        data_list = []
        for i, (query, video_id, frame_idx, instance_id) in enumerate(entries):
            where = f'entry {i} of {self.ann_file!r} (video {video_id!r})'
            if not isinstance(video_id, str) or not isinstance(
                    frame_idx, int) or not isinstance(instance_id, int):
                raise ValueError(
                    f'{where}: expected [query, video_id (str), frame_idx '
                    f'(int), instance_id (int)], got '
                    f'{[query, video_id, frame_idx, instance_id]!r}.')
            text = clean_caption(query, where)
            img_dir = fileio.join_path(img_root, video_id)
            frame_ids = self._video_frames(img_dir, where)
            frame_id = f'{frame_idx:05d}'
            if frame_id not in frame_ids:
                frame_file = fileio.join_path(img_dir,
                                              frame_id + self.img_suffix)
                raise FileNotFoundError(f'{where}: annotated frame '
                                        f'{frame_file!r} does not exist.')
            mask_file = fileio.join_path(ann_root, video_id, frame_id + '.h5')
            self._check_file(mask_file, 'mask annotation', where)
            data_list.append(
                self._make_info(video_id, f'{frame_id}_{instance_id}',
                                instance_id, text, frame_ids,
                                frame_ids.index(frame_id), img_dir, mask_file,
                                A2D_H5, None, labels, label_path))
        self._log_summary(data_list, label_path)
        return data_list


@DATASETS.register_module()
class JHMDBSentencesDataset(A2DSentencesDataset):
    """JHMDB-Sentences (`Gavrilyuk et al.
    <https://arxiv.org/abs/1803.07485>`_), evaluation only, with the
    ReferFormer protocol (a model trained on A2D-Sentences, 3 annotated
    frames per video drawn once by MTTR).

    Layout (the official release)::

        data_root/
        ├── Rename_Images/<class>/<video>/<frame:05d>.png
        ├── puppet_mask/<class>/<video>/puppet_mask.mat
        ├── jhmdb_annotation.txt
        └── jhmdb_sentences_samples_metadata.json

    ``video_frame_ids`` are ``'00001' .. '<video_total_frames:05d>'`` (the
    frames that have a puppet mask), ``obj_id`` is 1 (the single actor of
    the puppet mask), ``exp_id`` is the annotated frame name,
    ``mask_format`` is ``'jhmdb_mat'`` and ``mask_frame_idx`` the 0-based
    index of the annotated frame in ``part_mask``. The frame and mask paths
    of the sample list are resolved below ``data_prefix['img_path']`` /
    ``['ann_path']`` from the part after their ``Rename_Images`` /
    ``puppet_mask`` component (the basenames of those prefixes).

    Args:
        split (str): Only ``'test'``. Defaults to 'test'.
        **kwargs: See :class:`A2DSentencesDataset`.
    """

    SPLIT_DEFAULTS = dict(
        test=dict(
            ann_file='jhmdb_sentences_samples_metadata.json',
            data_prefix=dict(img_path='Rename_Images',
                             ann_path='puppet_mask')))
    DEFAULT_IMG_SUFFIX = '.png'

    def __init__(self, split: str = 'test', **kwargs) -> None:
        super().__init__(split=split, **kwargs)

    def _resolve(self, raw: str, root: str, where: str) -> str:
        """Path of ``raw`` below ``root``, from the part of ``raw`` after
        the basename of ``root``."""
        anchor = osp.basename(root.rstrip('/'))
        parts = [p for p in raw.replace('\\', '/').split('/') if p]
        if anchor not in parts:
            raise ValueError(f'{where}: path {raw!r} has no {anchor!r} '
                             'component.')
        idx = len(parts) - 1 - parts[::-1].index(anchor)
        return fileio.join_path(root, *parts[idx + 1:])

    def load_data_list(self) -> List[dict]:
        """Build one data info per (video, annotated frame).

        Returns:
            list[dict]: The data infos (see the class docstring).

        Raises:
            FileNotFoundError: The sample list, a frame folder, an annotated
                frame or a puppet mask is missing.
            ValueError: A malformed entry or an empty caption.
        """
        entries = self._load_entries(5)
        label_path, labels = self._load_labels()
        img_root = self.data_prefix.get('img_path', '')
        ann_root = self.data_prefix.get('ann_path', '')
        data_list = []
        for i, entry in enumerate(entries):
            video_id, frame_path, mask_path, total_frames, query = entry
            where = f'entry {i} of {self.ann_file!r} (video {video_id!r})'
            if not all(
                    isinstance(v, str)
                    for v in (video_id, frame_path,
                              mask_path)) or not isinstance(total_frames, int):
                raise ValueError(
                    f'{where}: expected [video_id, frame_path, mask_path, '
                    f'video_total_frames (int), query], got {entry!r}.')
            text = clean_caption(query, where)
            frame_file = self._resolve(frame_path, img_root, where)
            img_dir, frame_name = osp.split(frame_file)
            frame_id, suffix = osp.splitext(frame_name)
            if suffix != self.img_suffix or not frame_id.isdigit():
                raise ValueError(f'{where}: frame path {frame_path!r} is not '
                                 f'<frame:05d>{self.img_suffix}.')
            frame_idx = int(frame_id)  # 1-based
            if not 1 <= frame_idx <= total_frames:
                raise ValueError(
                    f'{where}: annotated frame {frame_idx} is not in '
                    f'[1, video_total_frames={total_frames}].')
            if not fileio.isdir(img_dir, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'{where}: frame folder {img_dir!r} does not exist.')
            self._check_file(frame_file, 'annotated frame', where)
            mask_file = self._resolve(mask_path, ann_root, where)
            self._check_file(mask_file, 'puppet mask', where)
            frame_ids = [f'{k:05d}' for k in range(1, total_frames + 1)]
            data_list.append(
                self._make_info(video_id, f'{frame_idx:05d}', 1, text,
                                frame_ids, frame_idx - 1, img_dir, mask_file,
                                JHMDB_MAT, frame_idx - 1, labels, label_path))
        self._log_summary(data_list, label_path)
        return data_list
