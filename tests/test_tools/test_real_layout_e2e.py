# Copyright (c) OpenMMLab. All rights reserved.
"""tools/test.py with the paper test configs on tiny copies of the real
Ref-YouTube-VOS and MeViS releases (:mod:`dmformer.testing.real_layouts`),
the paper model swapped for the tiny one: the files an evaluation server
takes.

- Ref-YouTube-VOS (``dmformer_swin-t_4xb1-6e_ref-ytvos.py``): one PNG per
  (valid video, expression, listed frame) at the frame's size, nothing of
  the test videos that the valid expression file also lists, a zip rooted
  at ``Annotations/``.
- MeViS valid (``..._ref-ytvos-ft_mevis-valid.py``): the same for the
  ``valid`` split, the zip rooted at the video folders.
- MeViS valid_u (``..._ref-ytvos-ft_mevis.py``): the local J&F, no-target
  expressions included, equal to a recomputation from the written masks.
"""
import glob
import io
import os.path as osp
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from dmformer.evaluation.functional import db_eval_boundary, db_eval_iou
from dmformer.testing.real_layouts import (write_mevis_release,
                                           write_ref_ytvos_release)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'dmformer')
TINY_CFG = osp.join(CONFIGS, 'dmformer_tiny_synthetic.py')
YTVOS_CFG = osp.join(CONFIGS, 'dmformer_swin-t_4xb1-6e_ref-ytvos.py')
MEVIS_CFG = osp.join(CONFIGS, 'dmformer_swin-t_4xb1-6e_ref-ytvos-ft_mevis.py')
MEVIS_VALID_CFG = osp.join(
    CONFIGS, 'dmformer_swin-t_4xb1-6e_ref-ytvos-ft_mevis-valid.py')


def _run(args, timeout=600):
    proc = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """The tiny model's config and a checkpoint of it, freshly built."""
    from dmformer.models.utils.ckpt_convert import build_model_from_config
    torch.manual_seed(0)
    model = build_model_from_config(TINY_CFG)
    path = str(tmp_path_factory.mktemp('tiny') / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return Config.fromfile(TINY_CFG).model.to_dict(), path


def with_tiny_model(folder, paper_cfg: str, model: dict,
                    extra: str = '') -> str:
    """A config that is ``paper_cfg`` with the tiny model (and ``extra``
    lines)."""
    path = osp.join(str(folder), 'tiny_' + osp.basename(paper_cfg))
    with open(path, 'w') as f:
        f.write(f'_base_ = {paper_cfg!r}\n'
                f'model = {dict(model, _delete_=True)!r}\n{extra}')
    return path


def test_tiny_model_config_keeps_the_paper_data_settings(tmp_path, tiny):
    paper = Config.fromfile(YTVOS_CFG)
    cfg = Config.fromfile(with_tiny_model(tmp_path, YTVOS_CFG, tiny[0]))
    assert cfg.test_dataloader == paper.test_dataloader
    assert cfg.test_evaluator == paper.test_evaluator
    assert cfg.model.backbone.embed_dims == 32
    assert paper.model.backbone.embed_dims != 32


def _zip_pngs(zip_path: str) -> dict:
    """{name in the archive: (mode, (h, w), values)} of every entry."""
    out = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            with Image.open(io.BytesIO(zf.read(name))) as img:
                arr = np.array(img)
                out[name] = (img.mode, arr.shape, set(np.unique(arr)))
    return out


def _check_submission(zip_path: str, expected: dict) -> None:
    """The archive holds exactly ``expected`` ({name: (h, w)}), 8-bit
    0/255 PNGs at the frame sizes."""
    pngs = _zip_pngs(zip_path)
    assert sorted(pngs) == sorted(expected)
    for name, (mode, shape, values) in pngs.items():
        assert mode == 'L', name
        assert shape == expected[name], name
        assert values <= {0, 255}, name


def test_ref_ytvos_valid_submission(tmp_path, tiny):
    model, ckpt = tiny
    root = str(tmp_path / 'ref-youtube-vos')
    release = write_ref_ytvos_release(root)
    cfg = with_tiny_model(tmp_path, YTVOS_CFG, model)
    work_dir = str(tmp_path / 'test')
    valid, test = release['valid'], release['test']
    out = _run([
        sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', work_dir,
        '--data-root', root, '--cfg-options',
        f'test_dataloader.dataset.expected_num_videos={len(valid)}'
    ])
    assert "'ref_ytvos/num_expressions': 6" in out
    zips = glob.glob(
        osp.join(work_dir, '*', 'RefYTVOSSubmissionMetric', 'submission.zip'))
    assert len(zips) == 1, zips
    expected = {
        f'Annotations/{v}/{e}/{f}.png': video['size']
        for v, video in valid.items() for e in video['expressions']
        for f in video['frames']
    }
    assert len(expected) == 18
    _check_submission(zips[0], expected)
    # nothing of the test videos, in the archive or on disk
    written = glob.glob(
        osp.join(osp.dirname(zips[0]), 'Annotations', '*', '*', '*.png'))
    assert len(written) == 18
    assert not any(v in p for p in written for v in test)


def test_mevis_valid_submission(tmp_path, tiny):
    model, ckpt = tiny
    root = str(tmp_path / 'mevis')
    release = write_mevis_release(root)
    cfg = with_tiny_model(tmp_path, MEVIS_VALID_CFG, model)
    work_dir = str(tmp_path / 'test')
    out = _run([
        sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', work_dir,
        '--data-root', root
    ])
    assert "'mevis/num_expressions': 3" in out
    assert 'mevis/J&F' not in out  # no ground truth
    zips = glob.glob(
        osp.join(work_dir, '*', 'MeViSSubmissionMetric', 'submission.zip'))
    assert len(zips) == 1, zips
    # the organisers' layout: the video folders at the archive root
    expected = {
        f'{v}/{e}/{f}.png': video['size']
        for v, video in release['valid'].items()
        for e in video['expressions'] for f in video['frames']
    }
    assert len(expected) == 10
    _check_submission(zips[0], expected)


def test_mevis_valid_u_local_score(tmp_path, tiny):
    """The paper valid_u evaluator (RVOSJFMetric, 'mevis/') next to a
    submission writer: J and F recomputed from the written masks and the
    release's targets (no-target expressions against empty masks) equal
    both metrics'."""
    model, ckpt = tiny
    root = str(tmp_path / 'mevis')
    release = write_mevis_release(root)
    paper_evaluator = Config.fromfile(MEVIS_CFG).test_evaluator.to_dict()
    assert paper_evaluator == dict(type='RVOSJFMetric', prefix='mevis')
    writer = dict(
        type='MeViSSubmissionMetric',
        outfile_prefix=str(tmp_path / 'unused'),
        prefix='written',
        zip_name=None)
    cfg = with_tiny_model(
        tmp_path, MEVIS_CFG, model,
        f'test_evaluator = {[paper_evaluator, writer]!r}\n')
    work_dir = str(tmp_path / 'test')
    out = _run([
        sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir', work_dir,
        '--data-root', root
    ])
    scores = {
        key: float(value)
        for key, value in re.findall(r"'(\w+/(?:J|F|J&F))': ([0-9.e-]+)",
                                     out)
    }
    assert "'mevis/num_expressions': 5" in out
    folders = glob.glob(
        osp.join(work_dir, '*', 'MeViSSubmissionMetric', 'Annotations'))
    assert len(folders) == 1, folders
    per_exp = []
    for video_id, video in release['valid_u'].items():
        for exp_id, target in video['targets'].items():
            pred = np.stack([
                np.array(
                    Image.open(
                        osp.join(folders[0], video_id, exp_id,
                                 f'{f}.png'))) > 0 for f in video['frames']
            ])
            assert pred.shape == target.shape
            per_exp.append((db_eval_iou(target, pred).mean(),
                            db_eval_boundary(target, pred).mean()))
    assert len(per_exp) == 5
    j = 100 * np.mean([p[0] for p in per_exp])
    f = 100 * np.mean([p[1] for p in per_exp])
    for prefix in ('mevis', 'written'):
        assert scores[f'{prefix}/J'] == pytest.approx(j, abs=1e-3)
        assert scores[f'{prefix}/F'] == pytest.approx(f, abs=1e-3)
        assert scores[f'{prefix}/J&F'] == pytest.approx((j + f) / 2,
                                                        abs=1e-3)
