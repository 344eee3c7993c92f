# Copyright (c) OpenMMLab. All rights reserved.
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from dmformer.apis import init_model
from dmformer.testing import load_script

TINY_CFG = 'configs/dmformer/dmformer_tiny_synthetic.py'


def _load_demo():
    return load_script('demo/video_demo.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_model(TINY_CFG)
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def _frames(num=5, h=48, w=64):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            for _ in range(num)]


def test_demo_on_frame_folder(tmp_path, checkpoint):
    demo = _load_demo()
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, frame in enumerate(_frames()):
        cv2.imwrite(str(folder / f'{i:05d}.jpg'), frame)
    out = tmp_path / 'out'
    assert demo.main([
        str(folder), TINY_CFG, checkpoint, '--text', 'the red circle',
        'the blue square on the left', '--out-dir',
        str(out), '--clip-len', '2'
    ]) == 0
    for i in range(2):
        names = sorted(os.listdir(out / 'masks' / str(i)))
        assert names == [f'{k:05d}.png' for k in range(5)]
        mask = cv2.imread(str(out / 'masks' / str(i) / names[0]), 0)
        assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
    assert len(os.listdir(out / 'overlay')) == 5
    cap = cv2.VideoCapture(str(out / 'overlay.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    assert not osp.exists(str(out / 'overlay.mp4.part.mp4'))
    lines = (out / 'sentences.txt').read_text().splitlines()
    # one chosen subject per clip of 2 frames -> 3 clips, mean score, text
    assert len(lines) == 2 and lines[1].count('|') == 2
    index, _, score, text = lines[1].split('\t')
    assert index == '1' and text == 'the blue square on the left'
    assert 0 <= float(score) <= 1
    # small frames are shown upscaled (48 -> 384 px) with a legend below
    vis = cv2.imread(str(out / 'overlay' / '00000.jpg'))
    assert vis.shape[1] == 64 * 8 and vis.shape[0] > 48 * 8
    legend = vis[48 * 8:]
    assert (legend.reshape(-1, 3).min(1) > 200).mean() > 0.5  # white panel
    # strip.png: a header, then a title row and a row of 5 tiles per
    # sentence (48 px frames shown 4x, 6 px gaps)
    strip = cv2.imread(str(out / 'strip.png'))
    assert strip.shape[1] == 5 * 64 * 4 + 4 * 6
    assert strip.shape[0] > 2 * 48 * 4

    # a second run into the same folder is refused ...
    with pytest.raises(ValueError, match='earlier run'):
        demo.main([str(folder), TINY_CFG, checkpoint, '--text', 'a dog',
                   '--out-dir', str(out)])
    # ... or replaces exactly the earlier outputs with --overwrite
    (out / 'notes.txt').write_text('keep me')
    assert demo.main([
        str(folder), TINY_CFG, checkpoint, '--text', 'a dog', '--out-dir',
        str(out), '--overwrite', '--no-video', '--strip-frames', '0'
    ]) == 0
    assert sorted(os.listdir(out / 'masks')) == ['0']
    assert not osp.exists(str(out / 'overlay.mp4'))
    assert not osp.exists(str(out / 'strip.png'))
    assert (out / 'notes.txt').read_text() == 'keep me'


def test_demo_legend_entry_and_strip_indices():
    demo = _load_demo()
    assert demo.strip_indices(10, 5) == [0, 2, 4, 7, 9]
    assert demo.strip_indices(3, 5) == [0, 1, 2]
    assert demo.strip_indices(0, 5) == []
    entry = demo.legend_entry(1, 'the red circle near the square',
                              'the red circle', 0.876)
    assert entry == ('[1] "the red circle near the square"  subject '
                     '"the red circle", score 0.88')


def test_demo_on_video_file(tmp_path, checkpoint):
    demo = _load_demo()
    video = str(tmp_path / 'in.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (64, 48))
    for frame in _frames(4):
        writer.write(frame)
    writer.release()
    out = tmp_path / 'out'
    assert demo.main([
        video, TINY_CFG, checkpoint, '--text', 'a dog', '--out-dir',
        str(out), '--no-video'
    ]) == 0
    assert len(os.listdir(out / 'masks' / '0')) == 4
    assert not osp.exists(str(out / 'overlay.mp4'))


def test_demo_rejects_bad_input(tmp_path, checkpoint):
    demo = _load_demo()
    with pytest.raises(FileNotFoundError, match='input not found'):
        demo.main([str(tmp_path / 'nope.mp4'), TINY_CFG, checkpoint,
                   '--text', 'a dog'])
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no image frames'):
        demo.main([str(empty), TINY_CFG, checkpoint, '--text', 'a dog'])
    bad_video = tmp_path / 'bad.mp4'
    bad_video.write_bytes(b'not a video')
    with pytest.raises(ValueError, match='cannot decode video'):
        demo.main([str(bad_video), TINY_CFG, checkpoint, '--text', 'a dog'])
    text_file = tmp_path / 'notes.txt'
    text_file.write_text('hello')
    with pytest.raises(ValueError, match='not a folder of frames'):
        demo.main([str(text_file), TINY_CFG, checkpoint, '--text', 'a dog'])
    corrupt = tmp_path / 'corrupt'
    corrupt.mkdir()
    cv2.imwrite(str(corrupt / '00000.jpg'), _frames(1)[0])
    (corrupt / '00001.jpg').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='00001.jpg'):
        demo.main([str(corrupt), TINY_CFG, checkpoint, '--text', 'a dog',
                   '--out-dir', str(tmp_path / 'o')])
    # a JPEG cut in half decodes in OpenCV without an error
    truncated = tmp_path / 'truncated'
    truncated.mkdir()
    cv2.imwrite(str(truncated / '00000.jpg'), _frames(1)[0])
    data = (truncated / '00000.jpg').read_bytes()
    (truncated / '00001.jpg').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='00001.jpg: image file is trunc'):
        demo.main([str(truncated), TINY_CFG, checkpoint, '--text', 'a dog',
                   '--out-dir', str(tmp_path / 'o2')])
    assert not (tmp_path / 'o2' / 'sentences.txt').exists()
    # two files, one frame id: masks would overwrite each other
    dup = tmp_path / 'dup'
    dup.mkdir()
    cv2.imwrite(str(dup / '00000.jpg'), _frames(1)[0])
    cv2.imwrite(str(dup / '00000.png'), _frames(1)[0])
    with pytest.raises(ValueError, match="same frame id '00000'"):
        demo.main([str(dup), TINY_CFG, checkpoint, '--text', 'a dog',
                   '--out-dir', str(tmp_path / 'o3')])
    with pytest.raises(ValueError, match='sentence 0 is empty'):
        demo.main([str(corrupt), TINY_CFG, checkpoint, '--text', '  '])
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        demo.main([str(corrupt), TINY_CFG, 'missing.pth', '--text', 'a'])
    with pytest.raises(ValueError, match='--test-scale must be >= 1'):
        demo.main([str(corrupt), TINY_CFG, checkpoint, '--text', 'a',
                   '--test-scale', '0'])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            demo.main([str(corrupt), TINY_CFG, checkpoint, '--text', 'a',
                       '--device', 'cuda'])
