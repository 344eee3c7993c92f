# Copyright (c) OpenMMLab. All rights reserved.
"""RefCOCO / RefCOCO+ / RefCOCOg for image pre-training.

The annotations are the COCO-format files of MDETR
(``instances_<name>_{train,val}.json``, used by ReferFormer's
``datasets/refexp.py``): every entry of ``images`` is **one referring
expression** (its ``caption``) on a COCO image (``file_name``,
``height``, ``width``, ``original_id``), and ``annotations`` holds the
referred object of that entry (``image_id`` = the entry's ``id``,
``bbox`` in xywh pixels, ``segmentation`` as polygons or RLE).
"""
import os.path as osp
from collections import defaultdict
from typing import Any, Dict, List, Optional

from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from dmformer.registry import DATASETS
from .transforms.text import clean_caption
from .utils import SkipBadSamplesMixin, check_subject_span, load_json


@DATASETS.register_module()
class RefCOCODataset(SkipBadSamplesMixin, BaseDataset):
    """RefCOCO, RefCOCO+ and RefCOCOg referring expressions for pre-training.

    Two expression formats are read from the COCO-format ``ann_file``:

    - **MDETR / ReferFormer** (``datasets/refexp.py``): every ``images``
      entry carries a ``caption``; its annotations (``image_id`` = the
      entry's ``id``) are the referred object. One sample per entry;
      ``video_id`` = the entry id, ``exp_id`` = ``'0'``.
    - **annotation sentences**: ``images`` entries without ``caption``, and
      annotations with ``sentences`` (a list of str or of dicts with
      ``sent`` / ``raw``), like the refer toolkit. One sample per sentence;
      ``video_id`` = ``'<image id>_<annotation id>'``, ``exp_id`` = the
      sentence index.

    Crowd annotations are ignored and boxes are clipped to the image; an
    expression left without a box of positive area is dropped (the
    official loader would resample it at every visit).

    Each sample is a one-frame clip in the dict-of-lists convention of
    :mod:`dmformer.datasets.transforms.loading`, so the video pipeline
    (:class:`LoadRVOSFrames`, :class:`LoadRefCOCOAnnotations`, optionally
    :class:`ImageToPseudoVideo`, ..., :class:`PackRVOSInputs`) applies
    unchanged. Data info keys: ``video_id``, ``exp_id``, ``obj_id``
    (annotation id), ``image_id`` (COCO image id), ``text`` and
    ``ori_text`` (cleaned caption), ``subject_span`` (list or None),
    ``dataset_name``, ``height``, ``width``, ``gt_anns`` (list of
    ``dict(bbox=[x1, y1, x2, y2], segmentation=...)``) and the per-frame
    lists ``img_path``, ``frame_id``, ``frame_idx``; ``video_frame_ids``
    and ``video_length`` = 1.

    Args:
        ann_file (str): COCO-format annotation file, e.g.
            ``'refcoco/instances_refcoco_train.json'``.
        data_prefix (dict): ``img_path``: image folder. Defaults to
            ``dict(img_path='train2014')``.
        subject_label_file (str, optional): Stored subject labels
            ``{video_id: {exp_id: [start, end]}}`` (character spans of the
            cleaned caption, written by
            ``tools/misc/gen_subject_labels.py``). ``'auto'`` uses
            :meth:`default_subject_label_file` of ``ann_file`` if it exists
            (a file per annotation file: the train and val files of a
            dataset share their folder and their entry ids); None disables
            them. Defaults to 'auto'.
        merge_multiple_objects (bool): With the caption format, an
            expression with several (non-crowd) annotations raises a
            ValueError unless this is True, in which case its object is the
            union of their masks and boxes. Defaults to False.
        max_bad_sample_ratio (float): In training, images that cannot be
            read are skipped (another sample is drawn, with a warning) until
            more than this share of the samples failed; see
            :class:`~dmformer.datasets.utils.SkipBadSamplesMixin`. Defaults
            to 0.01.
        backend_args (dict, optional): File backend arguments.
            Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``data_root``, ``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict(classes=('object', ))

    def __init__(self,
                 ann_file: str = '',
                 data_prefix: dict = dict(img_path='train2014'),
                 subject_label_file: Optional[str] = 'auto',
                 merge_multiple_objects: bool = False,
                 max_bad_sample_ratio: float = 0.01,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        self._init_bad_samples(max_bad_sample_ratio)
        self.subject_label_file = subject_label_file
        self.merge_multiple_objects = merge_multiple_objects
        self.backend_args = backend_args
        self._label_path: Optional[str] = None
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def _load_json(self, path: str, what: str) -> Any:
        """Load a JSON file, naming it in errors (see :func:`load_json`)."""
        return load_json(path, what, self.backend_args)

    @staticmethod
    def default_subject_label_file(ann_file: str) -> str:
        """The subject label file that ``subject_label_file='auto'`` reads.

        Args:
            ann_file (str): The annotation file, e.g.
                ``'refcoco/instances_refcoco_train.json'``.

        Returns:
            str: ``ann_file`` with ``_subject_labels.json`` instead of its
            ``.json`` suffix, e.g.
            ``'refcoco/instances_refcoco_train_subject_labels.json'``.
        """
        return osp.splitext(ann_file)[0] + '_subject_labels.json'

    def _load_subject_labels(self) -> Dict[str, dict]:
        """Read the stored subject labels (empty without a file)."""
        if self.subject_label_file is None:
            return {}
        if self.subject_label_file == 'auto':
            path = self.default_subject_label_file(self.ann_file)
            if not fileio.exists(path, backend_args=self.backend_args):
                return {}
        else:
            path = self.subject_label_file
            if self.data_root and not osp.isabs(path):
                path = fileio.join_path(self.data_root, path)
        labels = self._load_json(path, 'Subject label file')
        if not isinstance(labels, dict):
            raise ValueError(f'Subject label file {path!r} must map video ids '
                             'to {exp_id: [start, end]}.')
        self._label_path = path
        return labels

    def _parse_box(self, ann: dict, width: int, height: int,
                   where: str) -> Optional[List[float]]:
        """Clip a COCO xywh box to xyxy; None if its area is not
        positive."""
        bbox = ann.get('bbox')
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(f'{where}: "bbox" must be [x, y, w, h], got '
                             f'{bbox!r}.')
        x, y, w, h = (float(v) for v in bbox)
        x1, y1 = min(max(x, 0.), width), min(max(y, 0.), height)
        x2, y2 = min(max(x + w, 0.), width), min(max(y + h, 0.), height)
        if x2 <= x1 or y2 <= y1:
            return None
        return [x1, y1, x2, y2]

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        """Parse one expression into its one-frame data info (the dataset
        hook that every DMFormer dataset builds its data infos with, here
        on mmengine's :class:`BaseDataset`).

        Args:
            raw_data_info (dict): ``base`` (the image-level keys: image id,
                size, the per-frame ``img_path`` / ``frame_id`` lists...),
                ``video_id``, ``exp_id``, ``caption``, ``anns`` (the COCO
                annotations of the referred object), ``subject_span`` (the
                stored label or None) and ``where`` (names the entry in
                errors).

        Returns:
            dict | None: The data info (see the class docstring), or None
            when no annotation has a box of positive area (the expression
            is dropped).

        Raises:
            ValueError: An empty caption, an annotation without
                ``segmentation`` or a bad ``bbox``, or a bad subject label.
        """
        where = raw_data_info['where']
        base = raw_data_info['base']
        text = clean_caption(raw_data_info['caption'], where)
        gt_anns = []
        for ann in raw_data_info['anns']:
            box = self._parse_box(ann, base['width'], base['height'], where)
            if box is None:
                continue
            if 'segmentation' not in ann:
                raise ValueError(f'{where}: annotation {ann.get("id")!r} '
                                 'has no "segmentation".')
            gt_anns.append(dict(bbox=box, segmentation=ann['segmentation']))
        if not gt_anns:
            return None
        span = raw_data_info['subject_span']
        if span is not None:
            span = check_subject_span(span, text, where, self._label_path)
        return dict(
            base,
            video_id=raw_data_info['video_id'],
            exp_id=raw_data_info['exp_id'],
            obj_id=int(raw_data_info['anns'][0].get('id', -1)),
            text=text,
            ori_text=text,
            subject_span=span,
            gt_anns=gt_anns)

    def load_data_list(self) -> List[dict]:
        """Read the expressions of ``ann_file``; each goes through
        :meth:`parse_data_info`.

        Returns:
            list[dict]: One data info per expression (see the class
            docstring).

        Raises:
            FileNotFoundError: The annotation or label file is missing.
            ValueError: Missing ``images`` / ``annotations`` / ``bbox`` /
                ``file_name`` fields, an empty caption, several objects for
                one caption (unless ``merge_multiple_objects``), a bad
                subject label, or no usable expression at all.
        """
        logger = MMLogger.get_current_instance()
        content = self._load_json(self.ann_file, 'Annotation file')
        for key in ('images', 'annotations'):
            if not isinstance(content, dict) or not isinstance(
                    content.get(key), list):
                raise ValueError(f'Annotation file {self.ann_file!r} must '
                                 f'hold a list under key {key!r}.')
        labels = self._load_subject_labels()
        anns_by_image: Dict[Any, List[dict]] = defaultdict(list)
        for ann in content['annotations']:
            if not isinstance(ann, dict) or 'image_id' not in ann:
                raise ValueError(f'Annotation file {self.ann_file!r}: an '
                                 f'annotation has no "image_id": {ann!r:.200}')
            if ann.get('iscrowd', 0):
                continue
            anns_by_image[ann['image_id']].append(ann)

        img_root = self.data_prefix.get('img_path', '')
        data_list: List[dict] = []
        num_dropped = 0
        for img in content['images']:
            where = (f'image entry {img.get("id")!r} of '
                     f'{self.ann_file!r}')
            for key in ('id', 'file_name', 'height', 'width'):
                if key not in img:
                    raise ValueError(f'{where} has no {key!r} field.')
            height, width = int(img['height']), int(img['width'])
            base = dict(
                image_id=int(img.get('original_id', img['id'])),
                dataset_name=img.get('dataset_name'),
                height=height,
                width=width,
                img_path=[fileio.join_path(img_root, img['file_name'])],
                frame_id=[osp.splitext(osp.basename(img['file_name']))[0]],
                frame_idx=[0],
                video_length=1)
            base['video_frame_ids'] = list(base['frame_id'])
            samples = []  # (video_id, exp_id, caption, [ann])
            anns = anns_by_image.get(img['id'], [])
            if 'caption' in img:
                if len(anns) > 1 and not self.merge_multiple_objects:
                    raise ValueError(
                        f'{where} has {len(anns)} annotations for its '
                        'caption; set merge_multiple_objects=True to use '
                        'their union.')
                samples.append((str(img['id']), '0', img['caption'], anns))
            else:
                for ann in anns:
                    sentences = ann.get('sentences', [])
                    for k, sent in enumerate(sentences):
                        if isinstance(sent, dict):
                            sent = sent.get('sent', sent.get('raw'))
                        samples.append((f'{img["id"]}_{ann.get("id")}', str(k),
                                        sent, [ann]))
            for video_id, exp_id, caption, sample_anns in samples:
                info = self.parse_data_info(
                    dict(
                        base=base,
                        video_id=video_id,
                        exp_id=exp_id,
                        caption=caption,
                        anns=sample_anns,
                        subject_span=labels.get(video_id, {}).get(exp_id),
                        where=f'{where}, expression {exp_id!r}'))
                if info is None:
                    num_dropped += 1
                else:
                    data_list.append(info)
        if not data_list:
            raise ValueError(f'Annotation file {self.ann_file!r} holds no '
                             'expression with a valid box.')
        if self._label_path is None:
            labels_read = 'no subject label file, all'
        else:
            num_labelled = sum(info['subject_span'] is not None
                               for info in data_list)
            labels_read = (f'subject labels of {num_labelled} read from '
                           f'{self._label_path!r}, the others')
        logger.info(f'{self.__class__.__name__}: {len(data_list)} '
                    f'expressions from {self.ann_file!r} ({num_dropped} '
                    f'dropped without a valid box); {labels_read} use the '
                    'parser fallback (first noun chunk).')
        return data_list
