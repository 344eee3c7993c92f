# Copyright (c) OpenMMLab. All rights reserved.
import json

import pytest
import torch

from dmformer.datasets.synthetic_rvos import make_synthetic_rvos
from dmformer.testing import load_script

tool = load_script('tools/analysis_tools/probe_attributes.py')


def test_pool_objects_is_the_area_weighted_mean():
    feat = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 1, 3, 4)
    ids = torch.zeros(2, 10, 16, dtype=torch.long)  # stride 4, padded rows
    ids[0, 0:4, 0:8] = 7     # cells (0, 0) and (0, 1) of frame 0
    ids[1, 4:6, 0:4] = 7     # half of cell (1, 0) of frame 1
    pooled, visible = tool.pool_objects(feat, ids, 7)
    assert pooled.shape == (2, 1)
    torch.testing.assert_close(pooled[:, 0], torch.tensor([0.5, 16.]))
    assert visible.tolist() == [True, False]  # 8 pixels < MIN_PIXELS


def test_probe_on_generated_data(tmp_path, capsys):
    """Colour is in the mean colour of an object's pixels, so the ``rgb``
    probe must find it; every feature level gets a row."""
    root = str(tmp_path / 'syn')
    make_synthetic_rvos(root, num_train=8, num_valid=2, num_frames=2,
                        size=64)
    out = tmp_path / 'probe.json'
    results = tool.main([
        'configs/dmformer/dmformer_tiny_synthetic.py', '--data-root', root,
        '--num-train-videos', '8', '--steps', '150', '--json', str(out)
    ])
    assert set(results) == {
        'rgb', 'backbone 0', 'backbone 1', 'backbone 2', 'backbone 3',
        'neck 0', 'majority'
    }
    assert results['rgb']['colour'] >= 0.9
    assert json.loads(out.read_text()) == results
    assert 'linear-probe accuracy' in capsys.readouterr().out


def test_refuses_data_without_generator_info(tmp_path):
    with pytest.raises(FileNotFoundError, match='make_synthetic_rvos'):
        tool.generator_settings(str(tmp_path))
