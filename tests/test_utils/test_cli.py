# Copyright (c) OpenMMLab. All rights reserved.
import subprocess
import sys

import pytest

from dmformer.testing import REPO_ROOT
from dmformer.utils.cli import format_user_error, run_cli


def test_format_user_error():
    assert format_user_error(
        FileNotFoundError(2, 'No such file or directory',
                          'a.pth')) == 'No such file or directory (a.pth)'
    assert format_user_error(KeyError('Nope is not in the registry')) == \
        'Nope is not in the registry'
    assert format_user_error(ValueError('two\n  lines')) == 'two lines'
    assert format_user_error(ValueError()) == 'ValueError'


def test_run_cli_exit_codes(capsys, monkeypatch):
    monkeypatch.delenv('DMFORMER_DEBUG', raising=False)
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: None)
    assert info.value.code == 0
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: 3)
    assert info.value.code == 3

    def bad_input():
        raise ValueError('--shape must be positive')

    with pytest.raises(SystemExit) as info:
        run_cli(bad_input)
    assert info.value.code == 2
    assert capsys.readouterr().err == 'error: --shape must be positive\n'

    # a bug keeps its traceback
    def bug():
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError):
        run_cli(bug)
    # and so does a user error when asked for
    monkeypatch.setenv('DMFORMER_DEBUG', '1')
    with pytest.raises(ValueError):
        run_cli(bad_input)


@pytest.mark.parametrize('args,expected', [
    (['tools/train.py', 'missing.py'],
     'error: No such file or directory (missing.py)'),
    (['tools/test.py', 'configs/dmformer/dmformer_tiny_synthetic.py',
      'missing.pth'], 'error: checkpoint not found: missing.pth'),
    (['tools/train.py', 'configs/dmformer/dmformer_tiny_synthetic.py',
      '--resume', 'missing.pth'],
     'error: --resume: checkpoint not found: missing.pth'),
    (['tools/analysis_tools/count_params.py', 'missing.py'],
     'error: No such file or directory (missing.py)'),
    (['tools/model_converters/glip_to_dmformer.py', 'missing.pth',
      'out.pth'], 'error: Checkpoint file not found: missing.pth'),
])
def test_tools_print_one_line(args, expected, tmp_path):
    proc = subprocess.run([sys.executable] + args,
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [expected]
    assert 'Traceback' not in proc.stdout + proc.stderr


@pytest.mark.parametrize('tool', [
    ['tools/test.py', 'configs/dmformer/dmformer_tiny_synthetic.py'],
    ['tools/train.py', 'configs/dmformer/dmformer_tiny_synthetic.py',
     '--resume'],
])
def test_truncated_checkpoint_is_one_line(tool, tmp_path):
    import io

    import torch
    buf = io.BytesIO()
    torch.save({'state_dict': {'w': torch.zeros(64)}}, buf)
    ckpt = str(tmp_path / 'truncated.pth')
    with open(ckpt, 'wb') as f:
        f.write(buf.getvalue()[:300])
    proc = subprocess.run([sys.executable] + tool + [ckpt],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'error: {ckpt}: not a readable checkpoint, truncated or corrupt '
        '(PytorchStreamReader failed reading zip archive: failed finding '
        'central directory)'
    ]


@pytest.mark.parametrize('error', [
    FileNotFoundError("Frame file '/d/v/00005.jpg' of video 'v' does not "
                      'exist.'),
    ValueError("Mask '/d/v/00000.png' has size (24, 32) but its frame "
               "'/d/v/00000.jpg' has size (32, 24)."),
    KeyError("Unknown anno_id '7' in '/d/mask_dict.json'"),
])
def test_errors_of_dataloader_workers_are_one_line(error):
    """An error raised in a DataLoader worker reaches the main process
    wrapped with the worker's traceback; the one line is the original's."""
    from torch._utils import ExceptionWrapper
    try:
        raise error
    except type(error):
        wrapper = ExceptionWrapper(where='in DataLoader worker process 0')
    with pytest.raises(type(error)) as info:
        wrapper.reraise()
    assert 'Original Traceback' in str(info.value)  # what torch raises
    assert format_user_error(info.value) == format_user_error(error)
    assert '\n' not in format_user_error(info.value)
