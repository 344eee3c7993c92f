# Copyright (c) OpenMMLab. All rights reserved.
import json
import math

import numpy as np
import pytest
import torch

from dmformer.testing import load_script


def _tool():
    return load_script('tools/analysis_tools/compare_test_protocols.py')


def test_parse_protocol():
    tool = _tool()
    proto = tool.parse_protocol('1:one_step:pillow')
    assert proto == tool.Protocol(1, 'one_step', 'pillow')
    assert proto.name == '1:one_step:pillow'
    for bad, match in [('32:two_step', 'PAD:UPSAMPLE:BACKEND'),
                       ('0:two_step:cv2', 'PAD'), ('x:two_step:cv2', 'PAD'),
                       ('32:bicubic:cv2', 'UPSAMPLE'),
                       ('32:two_step:skimage', 'BACKEND')]:
        with pytest.raises(ValueError, match=match):
            tool.parse_protocol(bad)
    # every default is valid and the first one is ours
    protos = [tool.parse_protocol(p) for p in tool.DEFAULT_PROTOCOLS]
    assert protos[0] == tool.Protocol(32, 'two_step', 'cv2')
    assert protos[-1] == tool.Protocol(1, 'one_step', 'pillow')


def test_parse_args_errors(capsys):
    tool = _tool()
    with pytest.raises(SystemExit):
        tool.parse_args(['c.py', 'k.pth', '--protocols', '32:x:cv2'])
    assert 'UPSAMPLE' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['c.py', 'k.pth', '--protocols', '1:one_step:cv2',
                         '1:one_step:cv2'])
    assert 'twice' in capsys.readouterr().err


def test_set_resize_backend_nested():
    tool = _tool()
    pipeline = [
        dict(type='LoadRVOSFrames'),
        dict(type='VideoRandomResize', scales=[360]),
        dict(
            type='RandomChoice',
            transforms=[[dict(type='VideoRandomResize', scales=[1])],
                        [dict(type='VideoRandomSizeCrop'),
                         dict(type='VideoRandomResize', scales=[2])]]),
    ]
    assert tool.set_resize_backend(pipeline, 'pillow') == 3
    assert pipeline[1]['backend'] == 'pillow'
    assert pipeline[2]['transforms'][1][1]['backend'] == 'pillow'
    assert 'backend' not in pipeline[2]['transforms'][1][0]
    assert tool.set_resize_backend([dict(type='LoadRVOSFrames')], 'cv2') == 0


def test_mask_agreement_hand_computed():
    tool = _tool()
    ref = np.zeros((2, 4, 4), bool)
    ref[0, :2, :2] = True  # 4 pixels
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2, :3] = True  # 6 pixels, 4 shared
    probs = masks.astype(np.float32) * 0.9
    ref_probs = ref.astype(np.float32) * 0.9
    ref_probs[1, 3, 3] = 0.3
    out = tool.mask_agreement(masks, ref, probs, ref_probs)
    assert out['iou'] == pytest.approx(4 / 6)
    assert out['flipped'] == pytest.approx(2 / 32)
    assert out['max_prob_diff'] == pytest.approx(0.9)
    # both empty: full agreement; no probabilities: NaN
    empty = np.zeros((1, 2, 2), bool)
    out = tool.mask_agreement(empty, empty, None, None)
    assert out['iou'] == 1.0 and out['flipped'] == 0.0
    assert math.isnan(out['max_prob_diff'])
    with pytest.raises(ValueError, match='shape'):
        tool.mask_agreement(empty, ref, None, None)


def test_summarize_and_table():
    tool = _tool()
    protos = [tool.Protocol(32, 'two_step', 'cv2'),
              tool.Protocol(1, 'one_step', 'pillow')]
    # two expressions of 2 frames; J, F per frame
    records = {
        protos[0].name: [
            dict(video_id='v', exp_id='0', frame_ids=['a', 'b'],
                 J=[1.0, 0.5], F=[1.0, 1.0]),
            dict(video_id='v', exp_id='1', frame_ids=['a', 'b'],
                 J=[0.0, 0.0], F=[0.5, 0.5])
        ],
    }
    agree = {
        protos[0].name: [dict(iou=1., flipped=0., max_prob_diff=0.)] * 2,
        protos[1].name: [
            dict(iou=0.9, flipped=0.01, max_prob_diff=0.2),
            dict(iou=0.7, flipped=0.03, max_prob_diff=0.4)
        ],
    }
    summary = tool.summarize(protos, records, agree)
    ref = summary['32:two_step:cv2']
    # J = mean(0.75, 0) = 37.5, F = mean(1, 0.5) = 75
    assert ref['J'] == pytest.approx(37.5) and ref['F'] == pytest.approx(75)
    assert ref['J&F'] == pytest.approx(56.25)
    other = summary['1:one_step:pillow']
    assert math.isnan(other['J&F'])  # not scored
    assert other['mean_iou'] == pytest.approx(0.8)
    assert other['min_iou'] == pytest.approx(0.7)
    assert other['flipped'] == pytest.approx(0.02)
    assert other['max_prob_diff'] == pytest.approx(0.4)
    assert other['num_samples'] == 2
    table = tool.format_table(summary).splitlines()
    assert table[2].startswith('32:two_step:cv2 (ref)')
    assert '56.25' in table[2] and '0.8000' in table[3]


def test_end_to_end_on_synthetic_data(tmp_path):
    """Seeded tiny model on 64-px synthetic frames (resized to 112 by the
    test pipeline, so the backends differ): the reference agrees with
    itself, each switch changes the probabilities, every protocol is
    scored against the ground truth, and the summary is written."""
    from mmengine.config import Config

    from dmformer.datasets.synthetic_rvos import make_synthetic_rvos
    from dmformer.models.utils.ckpt_convert import current_to_legacy_key
    from dmformer.registry import MODELS
    from dmformer.testing import seeded_parameters
    from dmformer.utils import register_all_modules
    tool = _tool()
    root = str(tmp_path / 'data')
    make_synthetic_rvos(
        root, num_train=1, num_valid=1, num_frames=2, size=64, seed=0)
    config = 'configs/dmformer/dmformer_tiny_synthetic.py'
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    seeded_parameters(model, current_to_legacy_key)
    ckpt = str(tmp_path / 'seeded.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = str(tmp_path / 'summary.json')
    summary = tool.run([
        config, ckpt, '--data-root', root, '--max-samples', '2', '--out',
        out, '--protocols', '32:two_step:cv2', '32:one_step:cv2',
        '1:two_step:cv2', '32:two_step:pillow'
    ])
    written = json.load(open(out))
    assert list(written) == list(summary)
    for name, row in summary.items():
        assert written[name] == pytest.approx(row, nan_ok=True)
    ref = summary['32:two_step:cv2']
    assert ref['mean_iou'] == 1.0 and ref['max_prob_diff'] == 0.0
    for name in ('32:one_step:cv2', '1:two_step:cv2', '32:two_step:pillow'):
        row = summary[name]
        assert row['num_samples'] == 2
        assert 0 < row['max_prob_diff'] <= 1
        assert 0 <= row['J&F'] <= 100
