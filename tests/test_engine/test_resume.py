# Copyright (c) OpenMMLab. All rights reserved.
import os

import torch

from dmformer.engine.resume import find_resumable_checkpoint, list_checkpoints


def _save(path, step):
    torch.save(dict(meta=dict(iter=step), state_dict={'w': torch.ones(2)}),
               str(path))


def _truncate(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[:len(data) // 2])


def test_list_checkpoints_newest_first(tmp_path):
    for step in (2, 10, 4):
        _save(tmp_path / f'iter_{step}.pth', step)
    _save(tmp_path / 'best_loss_iter_10.pth', 10)  # not a resume point
    (tmp_path / '.iter_12.pth.0123abcd.part').write_bytes(b'unfinished')
    assert list_checkpoints(str(tmp_path)) == [
        str(tmp_path / f'iter_{step}.pth') for step in (10, 4, 2)
    ]
    assert list_checkpoints(str(tmp_path / 'missing')) == []


def test_truncated_newest_checkpoint_is_skipped(tmp_path):
    _save(tmp_path / 'iter_2.pth', 2)
    _truncate(tmp_path / 'iter_2.pth', tmp_path / 'iter_4.pth')
    (tmp_path / 'iter_6.pth').write_bytes(b'')
    lines = []
    found = find_resumable_checkpoint(str(tmp_path), log=lines.append)
    assert found == str(tmp_path / 'iter_2.pth')
    assert len(lines) == 2
    for line, step in zip(lines, (6, 4)):
        assert line.startswith(f'--resume: skipped {tmp_path}/iter_{step}.pth'
                               ': not a readable checkpoint, truncated or '
                               'corrupt (')


def test_no_checkpoint_loads(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'garbage')
    lines = []
    assert find_resumable_checkpoint(str(tmp_path), log=lines.append) is None
    assert len(lines) == 1
    assert find_resumable_checkpoint(str(tmp_path / 'new')) is None


def test_checkpoints_in_the_folder_of_the_pointer(tmp_path):
    """``CheckpointHook.out_dir`` puts the checkpoints elsewhere; the
    work dir's ``last_checkpoint`` names that folder."""
    work_dir, out_dir = tmp_path / 'work', tmp_path / 'out' / 'work'
    os.makedirs(work_dir)
    os.makedirs(out_dir)
    _save(out_dir / 'epoch_3.pth', 3)
    _truncate(out_dir / 'epoch_3.pth', out_dir / 'epoch_4.pth')
    (work_dir / 'last_checkpoint').write_text(str(out_dir / 'epoch_4.pth'))
    lines = []
    assert find_resumable_checkpoint(
        str(work_dir), log=lines.append) == str(out_dir / 'epoch_3.pth')
    assert lines[0].startswith(f'--resume: skipped {out_dir}/epoch_4.pth: ')
