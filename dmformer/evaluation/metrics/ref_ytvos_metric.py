# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
import tempfile
import zipfile
from typing import Dict, List, Optional, Sequence, Set, Tuple

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from dmformer.evaluation.functional import save_binary_png
from dmformer.registry import METRICS
from .rvos_jf_metric import (_dump_per_expression, _log_per_video,
                             check_label_files, score_subjects,
                             score_swap_pairs)
from .utils import (get_field, get_frame_ids, get_masks, sample_name,
                    score_masks, summarize_jf)


def remove_stale_pngs(folder: str, keep: set) -> int:
    """Delete the PNGs under ``folder`` that are not in ``keep`` (paths
    written by the current run) and the folders left empty.

    Returns:
        int: Number of PNGs removed.
    """
    removed = 0
    if not osp.isdir(folder):
        return removed
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = osp.join(root, name)
            if name.endswith('.png') and path not in keep:
                os.remove(path)
                removed += 1
        if root != folder and not os.listdir(root):
            os.rmdir(root)
    return removed


def zip_folder_atomic(src_dir: str, zip_path: str, arc_root: str) -> str:
    """Zip ``src_dir`` to ``zip_path`` without ever leaving a partial zip.

    The archive is written to a temporary file in the folder of
    ``zip_path`` and moved in place with :func:`os.replace` once complete;
    on any error the temporary file is deleted and the error re-raised, so
    ``zip_path`` is either absent, the old archive, or the new complete one.

    Args:
        src_dir (str): Folder to archive.
        zip_path (str): Output archive.
        arc_root (str): Name of ``src_dir`` inside the archive (e.g.
            ``'Annotations'``); ``''`` puts its content at the archive root.

    Returns:
        str: ``zip_path``.
    """
    if not osp.isdir(src_dir):
        raise FileNotFoundError(f'folder to zip not found: {src_dir}')
    out_dir = osp.dirname(osp.abspath(zip_path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        prefix='.' + osp.basename(zip_path) + '.', suffix='.tmp', dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp_path, 'w', zipfile.ZIP_DEFLATED) as zf:
            for root, dirs, files in os.walk(src_dir):
                dirs.sort()
                for name in sorted(files):
                    path = osp.join(root, name)
                    arcname = osp.join(arc_root,
                                       osp.relpath(path, src_dir))
                    zf.write(path, arcname)
        os.replace(tmp_path, zip_path)
    except BaseException as err:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(err, OSError) and err.filename is None:
            # e.g. a full disk: name the archive in the error
            raise OSError(err.errno, err.strerror or str(err),
                          zip_path) from err
        raise
    return zip_path


def save_submission_png(mask, path: str) -> None:
    """Write one PNG of a submission; a failed write leaves no partial
    file.

    Args:
        mask (np.ndarray): Binary mask (H, W).
        path (str): Output PNG.

    Raises:
        OSError: The write failed (e.g. a full disk), naming ``path``; the
            PNGs written before are kept.
    """
    try:
        save_binary_png(mask, path)
    except OSError as err:
        if osp.lexists(path) and not osp.isdir(path):
            try:  # a PNG cut short by the error
                os.remove(path)
            except OSError:
                pass
        raise OSError(
            err.errno, 'cannot write a submission PNG, the earlier ones are '
            f'kept: {err.strerror or err}', path) from err


def load_expected_frames(
    meta_file: str,
    exclude_meta_file: Optional[str] = None
) -> Tuple[Dict[str, Dict[str, List[str]]], Set[str]]:
    """The (video, expression, frame) triples a submission must cover.

    Args:
        meta_file (str): ``meta_expressions.json`` of the split
            (``{"videos": {video: {"expressions": {exp_id: ...},
            "frames": [frame names]}}}``).
        exclude_meta_file (str, optional): A second
            ``meta_expressions.json`` whose videos are left out (the
            Ref-YouTube-VOS ``valid`` file also lists the 305 videos of
            ``test``). Defaults to None.

    Returns:
        tuple: ``{video_id: {exp_id: [frame names]}}`` of the kept videos,
        and the set of the videos of ``meta_file`` that were left out.

    Raises:
        FileNotFoundError: A file does not exist.
        ValueError: A file is not a ``meta_expressions.json``.
    """
    videos = _read_meta_videos(meta_file, 'meta_file')
    excluded: Set[str] = set()
    if exclude_meta_file is not None:
        excluded = set(_read_meta_videos(exclude_meta_file,
                                         'exclude_meta_file')) & set(videos)
    expected = {
        str(video_id): {
            str(exp_id): [str(f) for f in video['frames']]
            for exp_id in video['expressions']
        }
        for video_id, video in videos.items() if video_id not in excluded
    }
    return expected, excluded


def _read_meta_videos(path: str, what: str) -> dict:
    """The ``videos`` of a ``meta_expressions.json``, checked."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        with open(path) as f:
            videos = json.load(f)['videos']
        for video_id, video in videos.items():
            if not isinstance(video['expressions'], dict) or \
                    not isinstance(video['frames'], list):
                raise TypeError(f'video {video_id!r} needs an "expressions" '
                                'dict and a "frames" list')
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f'{what} {path}: not a meta_expressions.json '
                         f'({e!r})') from e
    return videos


@METRICS.register_module()
class RefYTVOSSubmissionMetric(BaseMetric):
    """Writes a Ref-YouTube-VOS submission and, when GT masks are present,
    scores J&F locally.

    Every predicted mask is saved as
    ``<outfile_prefix>/Annotations/<video_id>/<exp_id>/<frame_id>.png``
    (8-bit mode 'L' PNG with values 0/255 at the frame's original size, one
    file per frame listed in ``frame_ids``) while processing;
    :meth:`compute_metrics` then zips the ``Annotations`` folder into
    ``<outfile_prefix>/<zip_name>`` atomically (see
    :func:`zip_folder_atomic`) with the archive root the server reads
    (:attr:`zip_root`): ``Annotations/<video>/<exp_id>/<frame>.png``, like
    ``zip -r submission.zip Annotations`` (Ref-YouTube-VOS, CodaLab
    competition 3282). The server keeps its ground truth private; when the
    samples carry ``gt_instances.masks`` (a split with local annotations)
    the metric also reports the J&F of :class:`RVOSJFMetric`.

    With ``meta_file`` the submission must hold exactly one PNG per
    (video, expression, listed frame) of ``meta_file`` minus the videos of
    ``exclude_meta_file``: the Ref-YouTube-VOS
    ``meta_expressions/valid/meta_expressions.json`` lists 507 videos, the
    202 of the valid split and the 305 of ``meta_expressions/test``, whose
    frames are not in ``valid/JPEGImages`` and which the server does not
    take. A sample of a video, expression or frame outside this set raises
    a ``ValueError`` before anything of it is written, and a missing PNG
    stops :meth:`compute_metrics` before zipping.

    Args:
        outfile_prefix (str): Output folder.
        zip_name (str, optional): Archive name; None skips zipping.
            Defaults to ``'submission.zip'``.
        meta_file (str, optional): ``meta_expressions.json`` of the split.
            If given, the expected set of the submission (see above).
            Defaults to None (no check).
        exclude_meta_file (str, optional): A ``meta_expressions.json``
            whose videos are not part of the submission (Ref-YouTube-VOS:
            ``meta_expressions/test/meta_expressions.json``). Needs
            ``meta_file``. Defaults to None.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'ref_ytvos'``.
        collect_dir (str, optional): See
            :class:`mmengine.evaluator.BaseMetric`.
        swap_pairs_file (str, optional): Also score the swap pairs of the
            synthetic data when J&F is scored (see
            :class:`RVOSJFMetric`). Defaults to None.
        subject_label_file (str, optional): Also report the accuracy of
            the chosen subject phrases (see :class:`RVOSJFMetric`).
            Defaults to None.
        per_expression_file (str, optional): When J&F is scored, also
            write the per-expression scores to this JSON file (the format
            of :class:`RVOSJFMetric`'s). Defaults to None.

    Raises:
        FileNotFoundError: ``meta_file`` or ``exclude_meta_file`` does not
            exist.
        ValueError: ``exclude_meta_file`` without ``meta_file``, or a
            malformed meta file.
    """
    default_prefix: Optional[str] = 'ref_ytvos'
    # names the benchmark in the log line of the written archive
    benchmark: str = 'Ref-YouTube-VOS'
    #: folder of the video folders inside the archive ('' = archive root)
    zip_root: str = 'Annotations'

    def __init__(self,
                 outfile_prefix: str,
                 zip_name: Optional[str] = 'submission.zip',
                 meta_file: Optional[str] = None,
                 exclude_meta_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 swap_pairs_file: Optional[str] = None,
                 subject_label_file: Optional[str] = None,
                 per_expression_file: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.per_expression_file = per_expression_file
        self.swap_pairs_file = swap_pairs_file
        self.subject_label_file = subject_label_file
        check_label_files(swap_pairs_file=swap_pairs_file,
                          subject_label_file=subject_label_file)
        if exclude_meta_file is not None and meta_file is None:
            raise ValueError(
                f'{self.__class__.__name__}: exclude_meta_file '
                f'({exclude_meta_file}) needs the meta_file it is '
                'subtracted from')
        self.outfile_prefix = outfile_prefix
        self.zip_name = zip_name
        self.meta_file = meta_file
        self.exclude_meta_file = exclude_meta_file
        # {video: {exp_id: [frames]}} a submission must cover (or None),
        # and the videos of meta_file left out by exclude_meta_file
        self.expected: Optional[Dict[str, Dict[str, List[str]]]] = None
        self.excluded_videos: Set[str] = set()
        if meta_file is not None:
            self.expected, self.excluded_videos = load_expected_frames(
                meta_file, exclude_meta_file)

    @property
    def anno_dir(self) -> str:
        """``<outfile_prefix>/Annotations``, where the PNGs go (follows
        ``outfile_prefix``, which ``tools/test.py`` points at the run's own
        log folder)."""
        return osp.join(self.outfile_prefix, 'Annotations')

    def _check_expected(self, sample, video_id: str, exp_id: str,
                        frame_ids: Sequence[str]) -> None:
        """Raise if a sample is not part of the expected submission."""
        name = sample_name(sample)
        if video_id not in self.expected:
            if video_id in self.excluded_videos:
                raise ValueError(
                    f'{name}: video {video_id} is listed in '
                    f'exclude_meta_file {self.exclude_meta_file} (a test '
                    'video, not part of the submission); leave it out of '
                    'the dataset (exclude_ann_file)')
            raise ValueError(f'{name}: video {video_id} is not in meta_file '
                             f'{self.meta_file}')
        listed = self.expected[video_id].get(exp_id)
        if listed is None:
            raise ValueError(f'{name}: expression {exp_id} is not listed for '
                             f'video {video_id} in meta_file {self.meta_file}')
        extra = sorted(set(frame_ids) - set(listed))
        if extra:
            raise ValueError(
                f'{name}: frames {extra[:3]} are not listed for video '
                f'{video_id} in meta_file {self.meta_file}')

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Write the PNGs of each sample (and score it if GT is present).

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict | RVOSDataSample]): Samples with
                ``pred_instances.masks`` (bool (T, H, W) at ``ori_shape``)
                and metainfo ``video_id``, ``exp_id``, ``frame_ids``;
                optionally ``gt_instances.masks`` (bool (T, H, W)).

        Raises:
            ValueError: A sample without predictions, with masks not at
                ``ori_shape``, or (with ``meta_file``) outside the expected
                submission.
        """
        for sample in data_samples:
            pred = get_masks(sample, 'pred_instances')
            if pred is None:
                raise ValueError(
                    f'{sample_name(sample)} has no pred_instances.masks')
            video_id = str(get_field(sample, 'video_id'))
            exp_id = str(get_field(sample, 'exp_id'))
            frame_ids = get_frame_ids(sample, pred.shape[0])
            ori_shape = get_field(sample, 'ori_shape', None)
            if ori_shape is not None and \
                    tuple(ori_shape)[:2] != pred.shape[1:]:
                raise ValueError(
                    f'{sample_name(sample)}: predicted masks of shape '
                    f'{pred.shape[1:]} are not at ori_shape '
                    f'{tuple(ori_shape)[:2]}')
            if self.expected is not None:
                self._check_expected(sample, video_id, exp_id, frame_ids)
            folder = osp.join(self.anno_dir, video_id, exp_id)
            for fid, mask in zip(frame_ids, pred):
                save_submission_png(mask, osp.join(folder, f'{fid}.png'))
            record = dict(
                video_id=video_id,
                exp_id=exp_id,
                frame_ids=frame_ids,
                text=get_field(sample, 'text', None),
                pred_subject=get_field(sample, 'pred_subject', None))
            gt = get_masks(sample, 'gt_instances')
            if gt is not None:
                record.update(score_masks(sample, pred, gt))
            self.results.append(record)

    def _check_complete(self) -> None:
        """Check that every expected (video, expression, frame) has a PNG.

        Raises:
            FileNotFoundError: Names the number of missing PNGs and the
                first one.
        """
        missing = []
        for video_id, expressions in sorted(self.expected.items()):
            for exp_id, frames in expressions.items():
                for fid in frames:
                    path = osp.join(self.anno_dir, video_id, exp_id,
                                    f'{fid}.png')
                    if not osp.isfile(path):
                        missing.append((path, video_id, exp_id, fid))
        if missing:
            path, video_id, exp_id, fid = missing[0]
            source = self.meta_file
            if self.exclude_meta_file is not None:
                source += f' minus {self.exclude_meta_file}'
            raise FileNotFoundError(
                f'submission incomplete: {len(missing)} PNGs of {source} '
                f'missing, e.g. {path} (video {video_id}, exp {exp_id}, '
                f'frame {fid})')

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Zip the submission; score J&F when GT was available.

        Returns:
            dict: ``num_expressions`` and, if every sample had GT masks,
            ``J``, ``F``, ``J&F`` in percent.
        """
        logger = MMLogger.get_current_instance()
        written = {
            osp.join(self.anno_dir, r['video_id'], r['exp_id'], f'{fid}.png')
            for r in results for fid in r['frame_ids']
        }
        stale = remove_stale_pngs(self.anno_dir, written)
        if stale:
            logger.warning(f'removed {stale} PNGs of an earlier run from '
                           f'{self.anno_dir}: they are not in this '
                           'submission')
        if self.expected is not None:
            self._check_complete()
        if self.zip_name is not None:
            zip_path = zip_folder_atomic(
                self.anno_dir, osp.join(self.outfile_prefix, self.zip_name),
                self.zip_root)
            root = f'{self.zip_root}/' if self.zip_root else 'the video ' \
                'folders'
            logger.info(f'{self.benchmark} submission written to {zip_path} '
                        f'({len(written)} PNGs, archive root: {root})')
        num_exps = len({(r['video_id'], r['exp_id']) for r in results})
        metrics = dict(num_expressions=num_exps)
        scored = [r for r in results if 'J' in r]
        if scored:
            if len(scored) != len(results):
                logger.warning(
                    f'only {len(scored)} of {len(results)} samples have GT '
                    'masks; J&F is computed on those')
            summary = summarize_jf(scored)
            _log_per_video(summary)
            if self.per_expression_file is not None:
                _dump_per_expression(summary, self.per_expression_file)
            metrics.update({
                'J': summary['J'] * 100,
                'F': summary['F'] * 100,
                'J&F': summary['JF'] * 100
            })
            if self.swap_pairs_file is not None:
                metrics.update(
                    score_swap_pairs(summary['per_exp'],
                                     self.swap_pairs_file))
        if self.subject_label_file is not None:
            metrics.update(score_subjects(results, self.subject_label_file))
        return metrics
