# Copyright (c) OpenMMLab. All rights reserved.
import copy
import os.path as osp
from typing import Dict, List, Optional, Set, Tuple

from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from dmformer.registry import DATASETS
from .transforms.text import clean_caption
from .utils import SkipBadSamplesMixin, check_subject_span, load_json


@DATASETS.register_module()
class BaseRVOSDataset(SkipBadSamplesMixin, BaseDataset):
    """Base dataset for referring video object segmentation.

    Reads annotations in the Ref-YouTube-VOS layout::

        data_root/
        ├── <split>/JPEGImages/<video>/<frame>.jpg
        ├── <split>/Annotations/<video>/<frame>.png   (palette, optional)
        ├── <split>/meta.json                         (optional)
        └── meta_expressions/<split>/meta_expressions.json
            (and optionally subject_labels.json beside it)

    ``meta_expressions.json`` is ``{"videos": {video: {"expressions":
    {exp_id: {"exp": str, "obj_id": str}}, "frames": [frame names]}}}``;
    ``meta.json`` is ``{"videos": {video: {"objects": {obj_id:
    {"category": str, ...}}}}}``; ``subject_labels.json`` is ``{video:
    {exp_id: [start_char, end_char]}}``, character spans of the *cleaned*
    caption (:func:`~dmformer.datasets.transforms.text.clean_caption`).

    One data info per (video, expression, anchor frame) with anchors every
    ``anchor_stride`` frames (``sample_mode='anchor'``, training, like the
    official loader), or per (video, expression) with all frames
    (``sample_mode='video'``, inference). The data infos are video-level and
    hold no per-frame paths; :class:`RVOSFrameSample` builds those (see the
    convention in :mod:`dmformer.datasets.transforms.loading`):
    ``video_id``, ``exp_id``, ``obj_id`` (int, -1 if unknown), ``text``
    and ``ori_text`` (cleaned caption), ``video_frame_ids`` (sorted),
    ``video_length``, ``anchor_idx`` (int or None), ``img_dir``,
    ``ann_dir`` (None without annotations), ``img_suffix``, ``ann_suffix``,
    ``category`` (str or None) and ``subject_span`` (list or None).

    :meth:`load_data_list` reads only the JSON files and checks that video
    folders exist; it does no image I/O, so ``lazy_init=True`` is cheap.
    Each expression goes through :meth:`parse_data_info` (caption, subject
    label) and :meth:`parse_referent` (what it refers to): the hooks that
    the other video datasets (Ref-DAVIS, MeViS, A2D/JHMDB-Sentences)
    override or call, so every data info is built in one place.

    Args:
        ann_file (str): ``meta_expressions.json`` (relative to
            ``data_root``).
        data_prefix (dict, optional): ``img_path`` (frame folder) and
            ``ann_path`` (annotation folder, may be missing on disk; empty
            for none) relative to ``data_root``. Defaults to None (both
            empty).
        meta_file (str, optional): ``meta.json``; when given, every video of
            ``ann_file`` must be in it and every ``obj_id`` must be one of
            its objects. Outside ``test_mode``, expressions whose object has
            an empty ``"frames"`` list there (it appears in no mask) are
            left out, with one warning giving their count. Defaults to
            None.
        exclude_ann_file (str, optional): A second ``meta_expressions.json``
            whose videos are removed (Ref-YouTube-VOS valid = valid - test).
            Defaults to None.
        sample_mode (str): ``'anchor'`` or ``'video'``. Defaults to
            'anchor'.
        anchor_stride (int): Distance between anchor frames in ``'anchor'``
            mode (the official loader uses ``num_frames``). Defaults to 5.
        subject_label_file (str, optional): Stored subject labels.
            ``'auto'`` uses ``subject_labels.json`` beside ``ann_file`` if it
            exists; None disables them. Defaults to 'auto'.
        expected_num_videos (int, optional): Raise if the number of kept
            videos differs (202 for the Ref-YouTube-VOS valid split).
            Defaults to None.
        img_suffix (str): Frame file suffix. Defaults to '.jpg'.
        ann_suffix (str): Annotation file suffix. Defaults to '.png'.
        with_video_expressions (bool): Give every data info
            ``video_expressions``: ``[{"text": str, "obj_id": int}]``, all
            kept expressions of its video (itself included), for training
            losses that contrast the objects of a clip (see
            :class:`~dmformer.models.heads.ReferentContrastHead`).
            Defaults to False.
        with_object_categories (bool): Give every data info
            ``object_categories``: ``{obj_id: category}`` of every object
            of its video in ``meta_file`` (which it then needs), for
            training losses that segment all objects by category (see
            :class:`~dmformer.models.heads.CategorySegHead`). Defaults to
            False.
        max_bad_sample_ratio (float): In training, samples whose files
            cannot be read are skipped (another one is drawn, with a
            warning) until more than this share of the samples failed; see
            :class:`~dmformer.datasets.utils.SkipBadSamplesMixin`. Defaults
            to 0.01.
        backend_args (dict, optional): File backend arguments.
            Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``data_root``, ``pipeline``, ``test_mode``, ``lazy_init``...).
    """

    METAINFO = dict(classes=('object', ))

    def __init__(self,
                 ann_file: str = '',
                 data_prefix: Optional[dict] = None,
                 meta_file: Optional[str] = None,
                 exclude_ann_file: Optional[str] = None,
                 sample_mode: str = 'anchor',
                 anchor_stride: int = 5,
                 subject_label_file: Optional[str] = 'auto',
                 expected_num_videos: Optional[int] = None,
                 img_suffix: str = '.jpg',
                 ann_suffix: str = '.png',
                 with_video_expressions: bool = False,
                 with_object_categories: bool = False,
                 max_bad_sample_ratio: float = 0.01,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        self._init_bad_samples(max_bad_sample_ratio)
        if sample_mode not in ('anchor', 'video'):
            raise ValueError("sample_mode must be 'anchor' or 'video', got "
                             f'{sample_mode!r}')
        if anchor_stride < 1:
            raise ValueError(
                f'anchor_stride must be >= 1, got {anchor_stride}')
        self.meta_file = meta_file
        self.exclude_ann_file = exclude_ann_file
        self.sample_mode = sample_mode
        self.anchor_stride = anchor_stride
        self.subject_label_file = subject_label_file
        self.expected_num_videos = expected_num_videos
        self.img_suffix = img_suffix
        self.ann_suffix = ann_suffix
        self.with_video_expressions = with_video_expressions
        if with_object_categories and meta_file is None:
            raise ValueError(
                f'{self.__class__.__name__}: with_object_categories=True '
                'needs a meta_file (meta.json) with the object categories.')
        self.with_object_categories = with_object_categories
        self.backend_args = backend_args
        if data_prefix is None:
            data_prefix = dict(img_path='', ann_path='')
        # an empty ``ann_path`` means "no annotations" (BaseDataset would
        # turn it into ``data_root`` itself)
        self._with_ann_prefix = bool(data_prefix.get('ann_path'))
        # set by load_data_list, read by the parse hooks for messages
        self._meta_path: Optional[str] = None
        self._label_path: Optional[str] = None
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    #: split name -> default arguments (subclasses with named splits)
    SPLIT_DEFAULTS: Dict[str, dict] = {}

    @classmethod
    def _with_split_defaults(cls, split: str, kwargs: dict) -> dict:
        """``kwargs`` completed with the ``SPLIT_DEFAULTS`` of ``split``
        (deep copies; explicit arguments win).

        Raises:
            ValueError: ``split`` is not one of ``SPLIT_DEFAULTS``.
        """
        if split not in cls.SPLIT_DEFAULTS:
            raise ValueError(f'split must be one of '
                             f'{sorted(cls.SPLIT_DEFAULTS)}, got {split!r}')
        for key, value in cls.SPLIT_DEFAULTS[split].items():
            kwargs.setdefault(key, copy.deepcopy(value))
        return kwargs

    def _abs(self, path: Optional[str]) -> Optional[str]:
        """Join ``path`` with ``data_root`` unless absolute or None."""
        if path is None or not self.data_root or osp.isabs(path):
            return path
        return fileio.join_path(self.data_root, path)

    def _load_json(self, path: str, what: str) -> dict:
        """Load a JSON file, naming it in errors (see :func:`load_json`)."""
        return load_json(path, what, self.backend_args)

    def _load_expression_videos(self, path: str, what: str) -> dict:
        """Load ``meta_expressions.json`` and return its ``videos`` dict."""
        content = self._load_json(path, what)
        if not isinstance(content, dict) or not isinstance(
                content.get('videos'), dict):
            raise ValueError(f'{what} {path!r} must hold a dict under key '
                             '"videos".')
        return content['videos']

    def _resolve_subject_label_file(self) -> Optional[str]:
        """Path of the stored subject labels, or None."""
        if self.subject_label_file is None:
            return None
        if self.subject_label_file == 'auto':
            path = fileio.join_path(
                osp.dirname(self.ann_file), 'subject_labels.json')
            exists = fileio.exists(path, backend_args=self.backend_args)
            return path if exists else None
        path = self._abs(self.subject_label_file)
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'Subject label file {path!r} does not exist.')
        return path

    def keep_expression(self, video_id: str, exp_id: str) -> bool:
        """Whether to keep an expression (subclasses filter here)."""
        return True

    @staticmethod
    def _parse_obj_id(raw, where: str) -> int:
        """Parse an ``obj_id`` field (-1 when absent)."""
        if raw is None:
            return -1
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError(
                f'{where}: obj_id must be an integer, got {raw!r}.')

    # ------------------------------------------------------------------
    # main entry
    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Build the video-level data infos.

        Returns:
            list[dict]: One data info per sample (see the class docstring).

        Raises:
            FileNotFoundError: A JSON file or a video frame folder is
                missing.
            ValueError: Malformed JSON content, a video missing from
                ``meta_file``, an unknown ``obj_id``, an empty caption, a
                video without frames, a bad subject label or an unexpected
                number of videos.
        """
        logger = MMLogger.get_current_instance()
        videos = self._load_expression_videos(self.ann_file, 'Expression file')
        excluded: Set[str] = set()
        if self.exclude_ann_file is not None:
            excluded = set(
                self._load_expression_videos(
                    self._abs(self.exclude_ann_file), 'Excluded expression '
                    'file'))
        meta_videos: Optional[dict] = None
        meta_path = self._abs(self.meta_file)
        if meta_path is not None:
            meta = self._load_json(meta_path, 'Meta file')
            meta_videos = meta.get('videos') if isinstance(meta,
                                                           dict) else None
            if not isinstance(meta_videos, dict):
                raise ValueError(f'Meta file {meta_path!r} must hold a dict '
                                 'under key "videos".')
        label_path = self._resolve_subject_label_file()
        self._meta_path, self._label_path = meta_path, label_path
        labels: Dict[str, dict] = {}
        if label_path is not None:
            labels = self._load_json(label_path, 'Subject label file')
            if not isinstance(labels, dict):
                raise ValueError(f'Subject label file {label_path!r} must '
                                 'map video ids to {exp_id: [start, end]}.')

        img_root = self.data_prefix.get('img_path', '')
        ann_root = self.data_prefix.get('ann_path') \
            if self._with_ann_prefix else None
        if ann_root is not None and not fileio.isdir(
                ann_root, backend_args=self.backend_args):
            logger.info(f'{self.__class__.__name__}: no annotation folder '
                        f'{ann_root!r}; samples carry no ground truth.')
            ann_root = None

        data_list: List[dict] = []
        kept_videos: List[str] = []
        num_labelled = num_exps = 0
        never_visible: List[Tuple[str, str]] = []
        for video_id in sorted(videos):
            if video_id in excluded:
                continue
            video = videos[video_id]
            where = f'video {video_id!r} of {self.ann_file!r}'
            if not isinstance(video, dict) or not isinstance(
                    video.get('expressions'), dict):
                raise ValueError(f'{where} has no "expressions" dict.')
            frame_ids = sorted(str(f) for f in video.get('frames', []))
            if not frame_ids:
                raise ValueError(f'{where} lists no frames.')
            objects: Optional[dict] = None
            if meta_videos is not None:
                if video_id not in meta_videos:
                    raise ValueError(
                        f'Expression file {self.ann_file!r} refers to video '
                        f'{video_id!r} which is missing from meta file '
                        f'{meta_path!r}.')
                objects = meta_videos[video_id].get('objects', {})
            img_dir = fileio.join_path(img_root, video_id)
            if not fileio.isdir(img_dir, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'Expression file {self.ann_file!r} refers to video '
                    f'{video_id!r} whose frame folder {img_dir!r} does not '
                    'exist.')
            ann_dir = None if ann_root is None else fileio.join_path(
                ann_root, video_id)

            exp_items: List[Tuple[str, dict]] = sorted(
                video['expressions'].items(),
                key=lambda kv: (len(str(kv[0])), str(kv[0])))
            video_infos: List[dict] = []
            for exp_id, exp in exp_items:
                exp_id = str(exp_id)
                if not self.keep_expression(video_id, exp_id):
                    continue
                info = self.parse_data_info(
                    dict(
                        video_id=video_id,
                        exp_id=exp_id,
                        exp=exp,
                        frame_ids=frame_ids,
                        img_dir=img_dir,
                        ann_dir=ann_dir,
                        objects=objects,
                        subject_span=labels.get(video_id, {}).get(exp_id)))
                if not self.test_mode and self._never_visible(
                        objects, info['obj_id']):
                    never_visible.append((video_id, exp_id))
                    continue
                num_labelled += info['subject_span'] is not None
                num_exps += 1
                video_infos.append(info)
            if self.with_video_expressions:
                expressions = [
                    dict(text=info['text'], obj_id=info['obj_id'])
                    for info in video_infos
                ]
                for info in video_infos:
                    info['video_expressions'] = expressions
            if self.with_object_categories:
                categories = self.parse_object_categories(
                    objects, f'video {video_id!r} of meta file {meta_path!r}')
                for info in video_infos:
                    info['object_categories'] = categories
            for info in video_infos:
                if self.sample_mode == 'video':
                    data_list.append(info)
                else:
                    for anchor in range(0, len(frame_ids), self.anchor_stride):
                        data_list.append(dict(info, anchor_idx=anchor))
            if video_infos:
                kept_videos.append(video_id)

        if self.expected_num_videos is not None and \
                len(kept_videos) != self.expected_num_videos:
            source = repr(self.ann_file)
            if self.exclude_ann_file is not None:
                source += f' minus {self.exclude_ann_file!r}'
            raise ValueError(
                f'{self.__class__.__name__}: expected '
                f'{self.expected_num_videos} videos in {source}, found '
                f'{len(kept_videos)}.')
        if never_visible:
            video_id, exp_id = never_visible[0]
            logger.warning(
                f'{self.__class__.__name__}: {len(never_visible)} '
                'expressions refer to an object that appears in no frame of '
                f'its video (an empty "frames" list in {meta_path!r}, e.g. '
                f'video {video_id!r}, expression {exp_id!r}); they are left '
                'out of training, as the official loader does.')
        if label_path is None:
            logger.info(f'{self.__class__.__name__}: no subject label file; '
                        'subject labels use the parser fallback (first noun '
                        'chunk) for all expressions.')
        else:
            logger.info(
                f'{self.__class__.__name__}: subject labels of '
                f'{num_labelled}/{num_exps} expressions read from teacher '
                f'labels {label_path!r}; the others use the parser fallback '
                '(first noun chunk).')
        logger.info(f'{self.__class__.__name__}: {len(kept_videos)} videos, '
                    f'{num_exps} expressions, {len(data_list)} samples '
                    f'({self.sample_mode} mode).')
        return data_list

    @staticmethod
    def _never_visible(objects: Optional[dict], obj_id: int) -> bool:
        """Whether ``meta_file`` says the object is in no frame: its entry
        has a ``"frames"`` list (as the Ref-YouTube-VOS ``meta.json``) and
        that list is empty."""
        obj = objects.get(str(obj_id)) if objects is not None else None
        frames = obj.get('frames') if isinstance(obj, dict) else None
        return isinstance(frames, list) and not frames

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """Parse one expression of one video into a video-level data info.

        Subclasses extend this hook (or :meth:`parse_referent`) for their
        annotation formats; :meth:`load_data_list` adds the anchors.

        Args:
            raw_data_info (dict): ``video_id`` and ``exp_id`` (str), ``exp``
                (the expression's entry in the expression file),
                ``frame_ids`` (sorted frame names), ``img_dir``, ``ann_dir``
                (or None), ``objects`` (the video's entry in ``meta_file``,
                or None without one) and ``subject_span`` (the stored
                subject label, or None).

        Returns:
            dict: The data info described in the class docstring, with
            ``anchor_idx=None``.

        Raises:
            ValueError: No ``exp`` field, an empty caption, a bad subject
                label, or an invalid referent (see :meth:`parse_referent`).
        """
        video_id, exp_id = raw_data_info['video_id'], raw_data_info['exp_id']
        exp = raw_data_info['exp']
        where = f'video {video_id!r}, expression {exp_id!r}'
        if not isinstance(exp, dict) or 'exp' not in exp:
            raise ValueError(f'{where} of {self.ann_file!r} has no "exp" '
                             'field.')
        text = clean_caption(exp['exp'], where)
        span = raw_data_info['subject_span']
        if span is not None:
            span = check_subject_span(span, text, where, self._label_path)
        frame_ids = raw_data_info['frame_ids']
        info = dict(
            video_id=video_id,
            exp_id=exp_id,
            text=text,
            ori_text=text,
            subject_span=span,
            video_frame_ids=frame_ids,
            video_length=len(frame_ids),
            img_dir=raw_data_info['img_dir'],
            ann_dir=raw_data_info['ann_dir'],
            img_suffix=self.img_suffix,
            ann_suffix=self.ann_suffix,
            anchor_idx=None)
        info.update(self.parse_referent(raw_data_info, where))
        return info

    @classmethod
    def parse_object_categories(cls, objects: dict,
                                where: str) -> Dict[int, str]:
        """The category of every object of a video.

        Args:
            objects (dict): The video's ``objects`` in ``meta_file``.
            where (str): Names the video and file in errors.

        Returns:
            dict[int, str]: ``{obj_id: category}``.

        Raises:
            ValueError: A non-integer object id or a missing category.
        """
        categories = {}
        for raw_id, obj in objects.items():
            obj_id = cls._parse_obj_id(raw_id, where)
            category = obj.get('category') if isinstance(obj, dict) else None
            if not isinstance(category, str) or not category:
                raise ValueError(f'{where}: object {raw_id!r} has no '
                                 '"category".')
            categories[obj_id] = category
        return categories

    def parse_referent(self, raw_data_info: dict, where: str) -> dict:
        """Parse what an expression refers to: one object id of the
        annotation PNGs.

        Args:
            raw_data_info (dict): As in :meth:`parse_data_info`.
            where (str): Names the video and expression in errors.

        Returns:
            dict: ``obj_id`` (int, -1 if unknown) and ``category`` (str or
            None, from ``meta_file``).

        Raises:
            ValueError: A non-integer ``obj_id``, or one that is not an
                object of the video in ``meta_file``.
        """
        obj_id = self._parse_obj_id(raw_data_info['exp'].get('obj_id'),
                                    where)
        objects = raw_data_info['objects']
        category = None
        if objects is not None:
            obj = objects.get(str(obj_id))
            if obj is None:
                raise ValueError(
                    f'{where} refers to obj_id {obj_id} which is not an '
                    f'object of the video in meta file {self._meta_path!r} '
                    f'(objects: {sorted(objects)}).')
            category = obj.get('category')
        return dict(obj_id=obj_id, category=category)
