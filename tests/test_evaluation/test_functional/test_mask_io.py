# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
from PIL import Image

from dmformer.evaluation.functional import (davis_palette, load_mask_png,
                                            save_binary_png, save_palette_png)


def test_davis_palette():
    pal = davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    np.testing.assert_array_equal(
        pal[:5], [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
                  [0, 0, 128]])


def test_palette_round_trip(tmp_path):
    labels = np.array([[0, 1, 2], [3, 255, 0]], dtype=np.uint8)
    path = str(tmp_path / 'a' / 'b' / '00000.png')
    save_palette_png(labels, path)
    img = Image.open(path)
    assert img.mode == 'P'
    assert img.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
    np.testing.assert_array_equal(load_mask_png(path), labels)
    with pytest.raises(ValueError, match=r'\[0, 255\]'):
        save_palette_png(np.array([[256]]), str(tmp_path / 'x.png'))


def test_binary_png(tmp_path):
    mask = np.array([[True, False], [False, True]])
    path = str(tmp_path / 'm.png')
    save_binary_png(mask, path)
    img = Image.open(path)
    assert img.mode == 'L'
    np.testing.assert_array_equal(np.array(img), [[255, 0], [0, 255]])


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        load_mask_png(str(tmp_path / 'missing.png'))
    bad = tmp_path / 'broken.png'
    bad.write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='broken.png'):
        load_mask_png(str(bad))
    rgb = tmp_path / 'rgb.png'
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(rgb)
    with pytest.raises(ValueError, match='rgb.png'):
        load_mask_png(str(rgb))
