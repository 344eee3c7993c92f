# Copyright (c) OpenMMLab. All rights reserved.
"""A2D-Sentences and JHMDB-Sentences with the ReferFormer protocol.

Both datasets annotate **one frame per sample**: a sample is a (video,
annotated frame, referred actor, expression) tuple. As in ReferFormer's
``datasets/a2d.py`` / ``datasets/jhmdb.py`` (adapted from MTTR), a clip of
``num_frames`` frames is built around the annotated frame
(``A2DFrameSample``), the ground truth exists on that frame only
(``LoadA2DAnnotations``; both in :mod:`dmformer.datasets.transforms`), and
its position in the clip is stored as the
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

from mmengine import fileio
from mmengine.logging import MMLogger

from dmformer.registry import DATASETS
from .base_rvos_dataset import BaseRVOSDataset
from .transforms.loading import A2D_H5, JHMDB_MAT
from .transforms.text import clean_caption


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
        bad = [k for k in self.UNSUPPORTED_ARGS if k in kwargs]
        kwargs = self._with_split_defaults(split, kwargs)
        if bad:
            raise ValueError(f'{self.__class__.__name__} does not take '
                             f'{bad}: one sample per annotated frame.')
        self.split = split
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
        # read by parse_data_info (subject label errors name the file)
        self._label_path = label_path
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
                   mask_frame_idx: Optional[int], labels: dict) -> dict:
        """One data info: :meth:`parse_data_info` of the base (caption,
        subject label, ``obj_id``) plus the annotated frame and its mask
        file."""
        info = self.parse_data_info(
            dict(
                video_id=video_id,
                exp_id=exp_id,
                exp=dict(exp=text, obj_id=obj_id),
                frame_ids=frame_ids,
                img_dir=img_dir,
                ann_dir=None,
                objects=None,
                subject_span=labels.get(video_id, {}).get(exp_id)))
        info.update(
            anchor_idx=anchor,
            annotated_frame_id=frame_ids[anchor],
            mask_file=mask_file,
            mask_format=mask_format,
            mask_frame_idx=mask_frame_idx)
        return info

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
                                A2D_H5, None, labels))
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
                                JHMDB_MAT, frame_idx - 1, labels))
        self._log_summary(data_list, label_path)
        return data_list
