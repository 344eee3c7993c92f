# Copyright (c) OpenMMLab. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from dmformer.testing import load_script


def _tool():
    return load_script('tools/analysis_tools/plot_learning_curve.py')


def _write_log(work_dir, lines):
    log = work_dir / '20261202_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text('\n'.join(json.dumps(r) for r in lines) + '\n')
    return log


def test_read_and_plot(tmp_path, capsys):
    tool = _tool()
    lines = [dict(lr=1e-3, loss=5.0 - i, iter=10 * i, step=10 * i)
             for i in range(1, 4)]
    lines.insert(2, {'ref_ytvos/J&F': 30.5, 'ref_ytvos/J': 29.,
                     'ref_ytvos/F': 32., 'ref_ytvos/swap_pairs_solved': 2,
                     'step': 0})  # MMEngine: the epoch, 0 in iter loops
    log = _write_log(tmp_path, lines)
    loss, vals = tool.read_scalar_log(str(log))
    assert loss == [(10, 4.0), (20, 3.0), (30, 2.0)]
    assert vals == {'ref_ytvos/J&F': [(20, 30.5)], 'ref_ytvos/J': [(20, 29.)],
                    'ref_ytvos/F': [(20, 32.)]}
    assert tool.find_scalar_log(str(tmp_path)) == str(log)

    out = tool.main([str(tmp_path), '--title', 'tiny'])
    assert out == osp.join(str(tmp_path), 'learning_curve.png')
    with Image.open(out) as img:
        assert img.size == (1100, 400)
        # something was drawn: not a blank canvas
        assert np.array(img.convert('L')).std() > 5
    assert 'ref_ytvos/J&F 30.50' in capsys.readouterr().out

    # smoothing with bias correction starts at the first value
    assert tool.smooth([2., 2., 2.]) == pytest.approx([2., 2., 2.])


def test_bad_logs(tmp_path):
    tool = _tool()
    with pytest.raises(SystemExit, match='no .*scalars.json'):
        tool.main([str(tmp_path)])
    with pytest.raises(SystemExit, match='no such file'):
        tool.main([str(tmp_path / 'missing')])
    log = _write_log(tmp_path, [{'ref_ytvos/J&F': 1.0, 'step': 1}])
    with pytest.raises(SystemExit, match='no training loss'):
        tool.main([str(log)])
    log.write_text('{"loss": 1, "iter": 1}\nnot json\n')
    with pytest.raises(SystemExit, match=r'scalars.json:2: not JSON'):
        tool.main([str(log)])
