# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
from PIL import Image

from dmformer.testing import load_script


def _tool():
    return load_script('tools/analysis_tools/score_demo_masks.py')


def _demo_and_gt(tmp_path):
    """Two frames, objects 1 (left half) and 2 (a 2x2 block); sentence 0
    predicts object 1 exactly, sentence 1 half of object 2 in frame 0 and
    nothing in frame 1 (where object 2 is absent: J = 1)."""
    demo, gt = tmp_path / 'demo', tmp_path / 'gt'
    gt.mkdir()
    (demo / 'masks' / '0').mkdir(parents=True)
    (demo / 'masks' / '1').mkdir(parents=True)
    (demo / 'sentences.txt').write_text(
        '0\tthe red circle\t0.900\tthe red circle left of the square\n'
        '1\tthe square\t0.400\tthe square right of the red circle\n')
    for f in range(2):
        lab = np.zeros((4, 4), np.uint8)
        lab[:, :2] = 1
        if f == 0:
            lab[:2, 2:] = 2
        img = Image.fromarray(lab)
        img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])  # DAVIS-like 'P'
        img.save(gt / f'{f:05d}.png')
        Image.fromarray((lab == 1).astype(np.uint8) * 255).save(
            demo / 'masks' / '0' / f'{f:05d}.png')
        pred = np.zeros((4, 4), np.uint8)
        if f == 0:
            pred[:2, 3] = 255
        Image.fromarray(pred).save(demo / 'masks' / '1' / f'{f:05d}.png')
    return demo, gt


def test_score_demo_masks(tmp_path, capsys):
    tool = _tool()
    demo, gt = _demo_and_gt(tmp_path)
    scores = tool.main([str(demo), str(gt), '--obj-ids', '1', '2'])
    assert scores == pytest.approx([1.0, (0.5 + 1.0) / 2])
    out = capsys.readouterr().out
    assert 'J 1.000 (right object; chosen subject "the red circle")' in out
    assert 'J 0.750' in out
    # the wrong object for sentence 0
    assert tool.score_demo_masks(str(demo), str(gt), [2, 2])[0] == 0.0


def test_bad_inputs(tmp_path):
    tool = _tool()
    demo, gt = _demo_and_gt(tmp_path)
    with pytest.raises(SystemExit, match='2 object ids for 2|1 object ids'):
        tool.main([str(demo), str(gt), '--obj-ids', '1'])
    with pytest.raises(SystemExit, match='GT folder not found'):
        tool.main([str(demo), str(tmp_path / 'nope'), '--obj-ids', '1', '2'])
    with pytest.raises(SystemExit, match='not a demo output dir'):
        tool.main([str(gt), str(gt), '--obj-ids', '1', '2'])
    (demo / 'masks' / '1' / '00000.png').write_bytes(b'not a png')
    with pytest.raises(SystemExit, match='cannot read mask .*00000.png'):
        tool.main([str(demo), str(gt), '--obj-ids', '1', '2'])
    (gt / '00001.png').unlink()
    with pytest.raises(SystemExit, match='no GT for frame 00001.png'):
        tool.main([str(demo), str(gt), '--obj-ids', '1', '2'])
    (demo / 'masks' / '0' / '00000.png').unlink()
    (demo / 'masks' / '0' / '00001.png').unlink()
    with pytest.raises(SystemExit, match='no masks in .*masks.0'):
        tool.main([str(demo), str(gt), '--obj-ids', '1', '2'])
    (demo / 'sentences.txt').write_text('0\tonly two\n')
    with pytest.raises(SystemExit, match='sentences.txt:1: expected 4'):
        tool.main([str(demo), str(gt), '--obj-ids', '1'])
