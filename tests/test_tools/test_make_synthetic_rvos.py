# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from dmformer.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'dataset_converters',
                  'make_synthetic_rvos.py')
SIZE, FRAMES = 64, 4


def _load_tool():
    return load_script(SCRIPT)


msr = _load_tool()


def _generate(out_dir, seed=0, **kwargs):
    return msr.make_synthetic_rvos(
        str(out_dir),
        num_train=2,
        num_valid=1,
        num_frames=FRAMES,
        size=SIZE,
        seed=seed,
        **kwargs)


def _load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic') / 'rvos'
    summary = _generate(out)
    return str(out), summary


def _masks(root, split, vid, names):
    return {
        n: np.array(Image.open(osp.join(root, split, 'Annotations', vid,
                                        f'{n}.png')))
        for n in names
    }


def _centroids(masks, names, obj_id):
    pts = []
    for n in names:
        ys, xs = np.nonzero(masks[n] == int(obj_id))
        if len(xs):
            pts.append((xs.mean(), ys.mean()))
    return np.array(pts)


def test_davis_palette_and_frame_names():
    pal = msr.davis_palette()
    assert len(pal) == 768
    assert pal[:15] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]
    assert pal[-3:] == [224, 224, 192]
    assert msr.frame_names(3) == ['00000', '00005', '00010']


def test_layout_readable(dataset):
    root, summary = dataset
    assert summary['videos'] == {'train': 2, 'valid': 1}
    test_meta = _load(osp.join(root, 'meta_expressions', 'test',
                               'meta_expressions.json'))
    assert test_meta == {'videos': {}}
    for split, count in (('train', 2), ('valid', 1)):
        meta_exp = _load(osp.join(root, 'meta_expressions', split,
                                  'meta_expressions.json'))
        meta = _load(osp.join(root, split, 'meta.json'))
        vids = sorted(meta_exp['videos'])
        assert len(vids) == count and sorted(meta['videos']) == vids
        # valid minus test = every held-out video.
        if split == 'valid':
            assert set(vids) - set(test_meta['videos']) == set(vids)
        for vid in vids:
            names = meta_exp['videos'][vid]['frames']
            assert names == ['00000', '00005', '00010', '00015']
            img_dir = osp.join(root, split, 'JPEGImages', vid)
            ann_dir = osp.join(root, split, 'Annotations', vid)
            assert sorted(os.listdir(img_dir)) == [f'{n}.jpg' for n in names]
            assert sorted(os.listdir(ann_dir)) == [f'{n}.png' for n in names]
            for n in names:
                img = cv2.imread(osp.join(img_dir, f'{n}.jpg'))
                assert img is not None and img.shape == (SIZE, SIZE, 3)
                pil = Image.open(osp.join(img_dir, f'{n}.jpg'))
                assert pil.mode == 'RGB' and pil.size == (SIZE, SIZE)
                png = Image.open(osp.join(ann_dir, f'{n}.png'))
                assert png.mode == 'P' and png.size == (SIZE, SIZE)
                assert png.getpalette()[:6] == [0, 0, 0, 128, 0, 0]


def test_masks_match_meta(dataset):
    root, _ = dataset
    for split in ('train', 'valid'):
        meta = _load(osp.join(root, split, 'meta.json'))
        for vid, video in meta['videos'].items():
            objects = video['objects']
            assert 2 <= len(objects) <= 4
            assert sorted(objects) == [
                str(i) for i in range(1, len(objects) + 1)
            ]
            names = msr.frame_names(FRAMES)
            masks = _masks(root, split, vid, names)
            values = set(np.unique(np.stack(list(masks.values()))))
            assert values <= {0} | {int(k) for k in objects}
            for obj_id, obj in objects.items():
                assert obj['category'] in msr.SHAPES
                present = [n for n in names if (masks[n] == int(obj_id)).any()]
                assert obj['frames'] == present
                # Not fully occluded in most frames.
                assert len(present) >= msr.MIN_VISIBLE_FRAMES * FRAMES


def test_expressions_and_subjects(dataset):
    root, summary = dataset
    total = 0
    for split in ('train', 'valid'):
        meta = _load(osp.join(root, split, 'meta.json'))
        exp_dir = osp.join(root, 'meta_expressions', split)
        meta_exp = _load(osp.join(exp_dir, 'meta_expressions.json'))
        subjects = _load(osp.join(exp_dir, 'subject_labels.json'))
        for vid, video in meta_exp['videos'].items():
            exps = video['expressions']
            total += len(exps)
            assert sorted(exps, key=int) == [str(i) for i in range(len(exps))]
            objects = meta['videos'][vid]['objects']
            # Every object is referred to at least once.
            assert {e['obj_id'] for e in exps.values()} == set(objects)
            assert len({e['exp'] for e in exps.values()}) == len(exps)
            for exp_id, exp in exps.items():
                text = exp['exp']
                assert text == ' '.join(text.lower().split())
                start, end = subjects[vid][exp_id]
                subject = text[start:end]
                assert start == 0 and subject.startswith('the ')
                assert end == len(text) or text[end] == ' '
                # The head noun of the subject is the object's category.
                assert subject.split()[-1] == objects[exp['obj_id']][
                    'category']
    assert total == sum(summary['expressions'].values())


def test_swap_pairs(dataset):
    root, summary = dataset
    num_pairs = 0
    for split in ('train', 'valid'):
        exp_dir = osp.join(root, 'meta_expressions', split)
        meta_exp = _load(osp.join(exp_dir, 'meta_expressions.json'))
        subjects = _load(osp.join(exp_dir, 'subject_labels.json'))
        pairs = _load(osp.join(exp_dir, 'swap_pairs.json'))['pairs']
        num_pairs += len(pairs)
        for (vid_a, id_a), (vid_b, id_b) in pairs:
            assert vid_a == vid_b and id_a != id_b
            exps = meta_exp['videos'][vid_a]['expressions']
            text_a, text_b = exps[id_a]['exp'], exps[id_b]['exp']
            assert text_a != text_b
            assert Counter(text_a.split()) == Counter(text_b.split())
            assert exps[id_a]['obj_id'] != exps[id_b]['obj_id']
            # The subject of one is the object NP of the other.
            sub_a = text_a.__getitem__(slice(*subjects[vid_a][id_a]))
            sub_b = text_b.__getitem__(slice(*subjects[vid_b][id_b]))
            assert text_b.endswith(' ' + sub_a)
            assert text_a.endswith(' ' + sub_b)
    assert num_pairs == sum(summary['swap_pairs'].values())


def test_swap_pairs_present_at_default_size(tmp_path):
    summary = msr.make_synthetic_rvos(
        str(tmp_path / 'd'), num_train=6, num_valid=0, num_frames=6,
        size=96, seed=3)
    assert summary['swap_pairs']['train'] >= 1
    assert summary['swap_pairs']['valid'] == 0


def test_relations_and_motions_hold_on_masks(dataset):
    root, _ = dataset
    checked = 0
    for split in ('train', 'valid'):
        exp_dir = osp.join(root, 'meta_expressions', split)
        infos = _load(osp.join(exp_dir, 'expression_info.json'))
        meta_exp = _load(osp.join(exp_dir, 'meta_expressions.json'))
        for vid, video in infos.items():
            names = meta_exp['videos'][vid]['frames']
            masks = _masks(root, split, vid, names)
            for exp_id, info in video.items():
                exp = meta_exp['videos'][vid]['expressions'][exp_id]
                assert info['obj_id'] == exp['obj_id']
                pts = _centroids(masks, names, info['obj_id'])
                if info['type'] == 'relation':
                    anchor = _centroids(masks, names, info['anchor_obj_id'])
                    dx, dy = anchor.mean(0) - pts.mean(0)
                    rel = info['relation']
                    assert any(p in exp['exp']
                               for p in msr.RELATIONS[rel])
                    s, e = info['anchor_span']
                    assert e == len(exp['exp']) and exp['exp'][s - 1] == ' '
                    if rel == 'left_of':
                        assert dx > 0 and dx >= abs(dy)
                    elif rel == 'right_of':
                        assert dx < 0 and -dx >= abs(dy)
                    elif rel == 'above':
                        assert dy > 0 and dy >= abs(dx)
                    elif rel == 'below':
                        assert dy < 0 and -dy >= abs(dx)
                    elif rel == 'next_to':
                        assert np.hypot(dx, dy) <= msr.NEAR_HI * SIZE
                    else:
                        assert np.hypot(dx, dy) >= msr.FAR_HI * SIZE
                    checked += 1
                elif info['type'] == 'motion' and info['motion'] != 'still':
                    dx, dy = pts[-1] - pts[0]
                    sign = {
                        'left': -dx,
                        'right': dx,
                        'up': -dy,
                        'down': dy
                    }[info['motion']]
                    assert sign >= msr.MOVE_HI * SIZE
                    checked += 1
    assert checked > 0


def _words_match(words, obj):
    """Whether a NP's words fit an object's attributes."""
    values = {obj['shape'], obj['colour'], obj['size'], obj['texture']}
    return all(w in values for w in words[1:])


def test_expressions_unambiguous_in_memory():
    rng = np.random.default_rng(7)
    for _ in range(3):
        video = msr.generate_video(rng, num_frames=FRAMES, size=SIZE)
        objs = {str(o['obj_id']): o for o in video['objects']}
        masks = dict(enumerate(video['masks']))
        cents = {k: _centroids(masks, range(FRAMES), k) for k in objs}
        for exp in video['expressions']:
            text = exp['exp']
            subject = text[exp['subject'][0]:exp['subject'][1]].split()
            fits = [k for k, o in objs.items() if _words_match(subject, o)]
            assert exp['obj_id'] in fits
            for other in fits:
                if other == exp['obj_id']:
                    continue
                # Any other object that fits the subject NP must clearly
                # fail the modifier.
                assert exp['type'] != 'attribute', text
                if exp['type'] == 'motion':
                    assert msr.motion_truth(exp['motion'], cents[other],
                                            SIZE, per_step=False) is False
                elif other != exp['anchor_obj_id']:
                    assert msr.relation_truth(
                        exp['relation'], cents[other].mean(0),
                        cents[exp['anchor_obj_id']].mean(0), SIZE) is False
            if exp['type'] == 'relation':
                start, end = exp['anchor_span']
                anchor_words = text[start:end].split()
                assert [
                    k for k, o in objs.items()
                    if _words_match(anchor_words, o)
                ] == [exp['anchor_obj_id']]
        for a, b in video['swap_pairs']:
            exp_a, exp_b = video['expressions'][a], video['expressions'][b]
            assert exp_a['relation'] in msr.SYMMETRIC_RELATIONS
            assert exp_a['anchor_obj_id'] == exp_b['obj_id']


def test_relation_and_motion_truth_values():
    # size 100: directional True from 12 px, False up to 4 px.
    assert msr.relation_truth('left_of', (10, 50), (40, 50), 100) is True
    assert msr.relation_truth('right_of', (10, 50), (40, 50), 100) is False
    assert msr.relation_truth('left_of', (10, 50), (18, 50), 100) is None
    # Dominance: 20 px right but 30 px down is not 'left of'.
    assert msr.relation_truth('left_of', (10, 20), (30, 50), 100) is None
    assert msr.relation_truth('above', (10, 20), (30, 50), 100) is True
    assert msr.relation_truth('next_to', (10, 50), (40, 50), 100) is True
    assert msr.relation_truth('next_to', (10, 50), (45, 50), 100) is None
    assert msr.relation_truth('far_from', (10, 50), (40, 50), 100) is False
    assert msr.relation_truth('far_from', (0, 0), (60, 0), 100) is True
    # 12 px left in total; 2 px up then 2 px down.
    track = np.array([[50., 50.], [44., 48.], [38., 50.]])
    assert msr.motion_truth('left', track, 100) is True
    assert msr.motion_truth('right', track, 100) is False
    assert msr.motion_truth('up', track, 100) is None
    # Steps of at most 1 px that way are clearly not moving that way.
    assert msr.motion_truth('down', [[50., 50.], [44., 51.]], 100) is False
    assert msr.motion_truth('still', track, 100) is False
    assert msr.motion_truth('still', np.full((3, 2), 5.), 100) is True
    # A bounce (left, then back right) is not 'moving left'.
    bounce = np.array([[50., 50.], [30., 50.], [36., 50.]])
    assert msr.motion_truth('left', bounce, 100) is None
    with pytest.raises(ValueError, match='unknown relation'):
        msr.relation_truth('inside', (0, 0), (1, 1), 100)
    with pytest.raises(ValueError, match='unknown motion'):
        msr.motion_truth('spinning', track, 100)


def test_determinism(dataset, tmp_path):
    root, _ = dataset
    again = tmp_path / 'again'
    _generate(again)
    for dirpath, _, files in os.walk(root):
        rel = osp.relpath(dirpath, root)
        for name in files:
            with open(osp.join(dirpath, name), 'rb') as f:
                first = f.read()
            with open(osp.join(again, rel, name), 'rb') as f:
                assert f.read() == first, osp.join(rel, name)
    other = tmp_path / 'other'
    _generate(other, seed=1)
    path = osp.join('meta_expressions', 'train', 'meta_expressions.json')
    assert _load(osp.join(root, path)) != _load(osp.join(other, path))


def test_overwrite_guard(tmp_path, capsys):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='--overwrite'):
        _generate(out)
    args = ['--out', str(out), '--num-train', '1', '--num-valid', '0',
            '--num-frames', '2', '--size', '64']
    with pytest.raises(SystemExit, match='not empty'):
        msr.main(args)
    msr.main(args + ['--overwrite'])
    assert 'wrote' in capsys.readouterr().out
    stale = out / 'train' / 'JPEGImages' / 'stale_video'
    stale.mkdir()
    msr.main(args + ['--overwrite'])
    assert not stale.exists() and (out / 'notes.txt').exists()
    info = _load(out / 'synthetic_rvos_info.json')
    assert info['args']['num_train'] == 1
    assert not [p for p in os.listdir(out / 'train') if '.tmp' in p]

    # a real dataset root (no synthetic_rvos_info.json) is never deleted
    real = tmp_path / 'ref-youtube-vos'
    (real / 'train' / 'JPEGImages').mkdir(parents=True)
    (real / 'meta_expressions').mkdir()
    with pytest.raises(SystemExit, match='not a dataset written by this'):
        msr.main(['--out', str(real)] + args[2:] + ['--overwrite'])
    assert (real / 'train' / 'JPEGImages').is_dir()

    # an interrupted run (images written, no info file yet) is ours: a
    # later --overwrite cleans it up
    os.remove(out / 'synthetic_rvos_info.json')
    (out / '.synthetic_rvos_in_progress').write_text('')
    msr.main(args + ['--overwrite'])
    assert (out / 'synthetic_rvos_info.json').is_file()
    assert not (out / '.synthetic_rvos_in_progress').exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='size'):
        msr.make_synthetic_rvos(str(tmp_path / 'a'), size=16)
    with pytest.raises(ValueError, match='num_frames'):
        msr.make_synthetic_rvos(str(tmp_path / 'b'), num_frames=1)
    with pytest.raises(ValueError, match='min_objects'):
        msr.generate_video(np.random.default_rng(0), min_objects=3,
                           max_objects=2)
    (tmp_path / 'file').write_text('x')
    with pytest.raises(FileExistsError, match='not a directory'):
        msr.make_synthetic_rvos(str(tmp_path / 'file'))
