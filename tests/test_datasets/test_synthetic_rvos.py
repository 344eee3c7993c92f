# Copyright (c) OpenMMLab. All rights reserved.
import hashlib
import json
import os
import os.path as osp
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from dmformer.datasets import synthetic_rvos as msr
from dmformer.testing import load_script

SIZE, FRAMES = 64, 4
# the command line (tools/dataset_converters/make_synthetic_rvos.py)
tool = load_script('tools/dataset_converters/make_synthetic_rvos.py')


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
        tool.main(args)
    tool.main(args + ['--overwrite'])
    assert 'wrote' in capsys.readouterr().out
    stale = out / 'train' / 'JPEGImages' / 'stale_video'
    stale.mkdir()
    tool.main(args + ['--overwrite'])
    assert not stale.exists() and (out / 'notes.txt').exists()
    info = _load(out / 'synthetic_rvos_info.json')
    assert info['args']['num_train'] == 1
    assert not [p for p in os.listdir(out / 'train') if '.tmp' in p]

    # a real dataset root (no synthetic_rvos_info.json) is never deleted
    real = tmp_path / 'ref-youtube-vos'
    (real / 'train' / 'JPEGImages').mkdir(parents=True)
    (real / 'meta_expressions').mkdir()
    with pytest.raises(SystemExit, match='not a dataset written by this'):
        tool.main(['--out', str(real)] + args[2:] + ['--overwrite'])
    assert (real / 'train' / 'JPEGImages').is_dir()

    # an interrupted run (images written, no info file yet) is ours: a
    # later --overwrite cleans it up
    os.remove(out / 'synthetic_rvos_info.json')
    (out / '.synthetic_rvos_in_progress').write_text('')
    tool.main(args + ['--overwrite'])
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


# ----------------------------------------------------------------------
# MeViS layout
# ----------------------------------------------------------------------
MEVIS_SPLITS = (('train', 0, 3), ('valid_u', 1, 2), ('valid', 2, 2))
MEVIS_GT_FILES = {
    'JPEGImages', 'meta_expressions.json', 'mask_dict.json',
    'subject_labels.json', 'swap_pairs.json', 'expression_info.json'
}


@pytest.fixture(scope='module')
def mevis(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic') / 'mevis'
    summary = msr.make_synthetic_rvos(
        str(out), num_train=3, num_valid=2, num_test=2, num_frames=FRAMES,
        size=SIZE, seed=0, layout='mevis')
    return str(out), summary


def test_mevis_files(mevis):
    root, summary = mevis
    assert sorted(os.listdir(root)) == [
        'synthetic_rvos_info.json', 'train', 'valid', 'valid_u'
    ]
    for split, _, count in MEVIS_SPLITS:
        files = set(os.listdir(osp.join(root, split)))
        if split == 'valid':
            assert files == {'JPEGImages', 'meta_expressions.json'}
        else:
            assert files == MEVIS_GT_FILES
        vids = sorted(os.listdir(osp.join(root, split, 'JPEGImages')))
        assert vids == [f'{split}_{i:04d}' for i in range(count)]
        meta = _load(osp.join(root, split, 'meta_expressions.json'))
        assert sorted(meta['videos']) == vids
        for vid in vids:
            names = meta['videos'][vid]['frames']
            assert names == msr.frame_names(FRAMES)
            assert sorted(os.listdir(osp.join(root, split, 'JPEGImages',
                                              vid))) == [
                                                  f'{n}.jpg' for n in names
                                              ]
    assert summary['videos'] == {'train': 3, 'valid_u': 2, 'valid': 2}
    assert set(summary['swap_pairs']) == {'train', 'valid_u'}
    info = _load(osp.join(root, 'synthetic_rvos_info.json'))
    assert info['args']['layout'] == 'mevis'
    assert info['args']['num_test'] == 2


def test_mevis_valid_has_no_gt(mevis):
    root, summary = mevis
    meta = _load(osp.join(root, 'valid', 'meta_expressions.json'))
    total = 0
    for video in meta['videos'].values():
        assert set(video) == {'expressions', 'frames'}
        exps = video['expressions']
        assert sorted(exps, key=int) == [str(i) for i in range(len(exps))]
        for exp in exps.values():
            assert list(exp) == ['exp'] and isinstance(exp['exp'], str)
        total += len(exps)
    assert total == summary['expressions']['valid'] > 0


def test_mevis_meta_and_masks(mevis):
    from pycocotools import mask as mask_utils
    root, summary = mevis
    for split, split_idx, count in MEVIS_SPLITS[:2]:
        meta = _load(osp.join(root, split, 'meta_expressions.json'))
        mask_dict = _load(osp.join(root, split, 'mask_dict.json'))
        infos = _load(osp.join(root, split, 'expression_info.json'))
        subjects = _load(osp.join(root, split, 'subject_labels.json'))
        tracks = {}  # anno_id -> (video, obj_id)
        num_exps = num_multi = 0
        for i in range(count):
            vid = f'{split}_{i:04d}'
            video = msr.generate_video(
                np.random.default_rng([0, split_idx, i]), FRAMES, SIZE)
            num_objects = len(video['objects'])
            exps = meta['videos'][vid]['expressions']
            assert sorted(exps, key=int) == [str(j) for j in range(len(exps))]
            assert len({e['exp'] for e in exps.values()}) == len(exps)
            referred = set()
            for exp_id, exp in exps.items():
                assert set(exp) == {'exp', 'obj_id', 'anno_id'}
                text = exp['exp']
                assert text == ' '.join(text.lower().split())
                assert len(exp['obj_id']) == len(exp['anno_id']) >= 1
                assert exp['obj_id'] == sorted(set(exp['obj_id']))
                for obj_id, anno_id in zip(exp['obj_id'], exp['anno_id']):
                    assert 0 <= obj_id < num_objects
                    assert tracks.setdefault(anno_id,
                                             (vid, obj_id)) == (vid, obj_id)
                referred.update(exp['obj_id'])
                info = infos[vid][exp_id]
                assert info['obj_ids'] == exp['obj_id']
                assert info['anno_ids'] == exp['anno_id']
                start, end = subjects[vid][exp_id]
                assert start == 0 and (end == len(text) or text[end] == ' ')
                num_exps += 1
                num_multi += len(exp['obj_id']) >= 2
            assert referred == set(range(num_objects))
            for obj in video['objects']:
                anno_id = [a for a, t in tracks.items()
                           if t == (vid, obj['obj_id'] - 1)]
                track = mask_dict[str(anno_id[0])]
                assert len(track) == FRAMES
                for t, (name, rle) in enumerate(
                        zip(meta['videos'][vid]['frames'], track)):
                    mask = video['masks'][t] == obj['obj_id']
                    if rle is None:
                        assert not mask.any()
                        continue
                    assert isinstance(rle['counts'], str)
                    img = Image.open(
                        osp.join(root, split, 'JPEGImages', vid,
                                 f'{name}.jpg'))
                    assert rle['size'] == [img.height, img.width]
                    decoded = mask_utils.decode(
                        dict(size=rle['size'],
                             counts=rle['counts'].encode()))
                    np.testing.assert_array_equal(decoded, mask)
        assert sorted(tracks) == list(range(len(tracks)))
        assert sorted(mask_dict, key=int) == [str(a) for a in sorted(tracks)]
        assert num_exps == summary['expressions'][split]
        assert num_multi == summary['multi_object'][split]


def test_mevis_swap_pairs(mevis):
    root, summary = mevis
    for split, _, _ in MEVIS_SPLITS[:2]:
        meta = _load(osp.join(root, split, 'meta_expressions.json'))
        pairs = _load(osp.join(root, split, 'swap_pairs.json'))['pairs']
        assert len(pairs) == summary['swap_pairs'][split]
        for (vid_a, id_a), (vid_b, id_b) in pairs:
            exps = meta['videos'][vid_a]['expressions']
            assert vid_a == vid_b
            assert Counter(exps[id_a]['exp'].split()) == Counter(
                exps[id_b]['exp'].split())
            assert len(exps[id_a]['obj_id']) == 1
            assert exps[id_a]['obj_id'] != exps[id_b]['obj_id']


def _group_truth(video, obj, motion):
    """Motion truth of an object from both estimates (as the generator)."""
    k = obj['obj_id']
    cents = _centroids(dict(enumerate(video['masks'])),
                       range(len(video['masks'])), k)
    true = msr.motion_truth(motion, obj['centres'], len(video['masks'][0]))
    masks = msr.motion_truth(motion, cents, len(video['masks'][0]),
                             per_step=False)
    return true if true is masks else None


def _check_group_expression(video, exp):
    """The referents of a multi-object / motion-only expression are
    exactly the objects that satisfy its words."""
    text, desc, motion = exp['exp'], exp['description'], exp['motion']
    ids = [int(i) for i in exp['obj_ids']]
    subject = text[:exp['subject'][1]].split()
    noun = desc['shape']
    if len(ids) >= 2:
        assert subject[1] == ('two', 'three', 'four')[len(ids) - 2]
        assert subject[-1] in ({f'{noun}s'} if noun else set(
            msr.GENERIC_NOUNS.values()))
        attr_words = subject[2:-1]
    else:
        assert exp['type'] == 'motion_only'
        assert subject[-1] in msr.GENERIC_NOUNS and len(subject) == 2
        attr_words = []
    assert sorted(attr_words) == sorted(v for a, v in desc.items()
                                        if a != 'shape')
    if exp['type'] == 'motion_only':
        assert noun is None and not attr_words and motion is not None
    rest = text[exp['subject'][1]:].strip()
    if motion is None:
        assert rest == ''
    else:
        phrases = set(msr.MOTIONS[motion])
        if len(ids) >= 2:
            phrases = {p.replace(' is ', ' are ') for p in phrases}
        assert rest in phrases, text
    for obj in video['objects']:
        fits = (noun is None or obj['shape'] == noun) and all(
            obj[a] == v for a, v in desc.items() if a != 'shape')
        truth = fits and (motion is None or _group_truth(video, obj, motion))
        # Members clearly satisfy it, everything else clearly fails it.
        assert truth is (obj['obj_id'] in ids), (text, obj)


def test_multi_object_referents_exact():
    counts = Counter()
    for seed in range(8):
        rng = np.random.default_rng([5, seed])
        video = msr.generate_video(
            rng, num_frames=6, size=96, multi_object=True)
        for exp in video['expressions']:
            assert exp['obj_ids'] == sorted(exp['obj_ids'], key=int)
            if exp['type'] in ('multi_object', 'motion_only'):
                _check_group_expression(video, exp)
                counts[exp['type']] += 1
                counts['plural'] += len(exp['obj_ids']) >= 2
                counts['with_motion'] += exp['motion'] is not None
            else:
                assert exp['obj_ids'] == [exp['obj_id']]
        # Every candidate, not only the sampled ones.
        scene = msr._Scene(video['objects'], video['masks'], 96)
        for cand in msr._group_candidates(scene):
            _check_group_expression(
                video, msr._make_group_expression(rng, scene, cand))
            counts['candidates'] += 1
    assert counts['candidates'] >= 30
    assert counts['multi_object'] >= 4 and counts['motion_only'] >= 2
    assert counts['plural'] >= 4 and counts['with_motion'] >= 2


def test_mevis_keeps_single_object_expressions():
    for seed in range(3):
        plain = msr.generate_video(
            np.random.default_rng(seed), FRAMES, SIZE)
        multi = msr.generate_video(
            np.random.default_rng(seed), FRAMES, SIZE, multi_object=True)
        np.testing.assert_array_equal(plain['masks'], multi['masks'])
        assert multi['swap_pairs'] == plain['swap_pairs']
        singles = multi['expressions'][:len(plain['expressions'])]
        for a, b in zip(plain['expressions'], singles):
            assert b.pop('obj_ids') == [b['obj_id']]
            assert b.pop('description') is None
            assert a == b
        for exp in multi['expressions'][len(plain['expressions']):]:
            assert exp['type'] in ('multi_object', 'motion_only')


def _tree_hash(root):
    """SHA-256 of every JSON file and the pixels of every PNG mask."""
    digest = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = osp.join(dirpath, name)
            if name.endswith('.json'):
                with open(path, 'rb') as f:
                    data = f.read()
            elif name.endswith('.png'):
                data = np.array(Image.open(path)).tobytes()
            else:
                continue
            digest.update(osp.relpath(path, root).encode() + b'\0' + data)
    return digest.hexdigest()


def test_ytvos_layout_unchanged(tmp_path):
    # Computed with the generator before the mevis layout was added.
    out = tmp_path / 'ytvos'
    msr.make_synthetic_rvos(
        str(out), num_train=3, num_valid=1, num_frames=6, size=96, seed=3)
    assert _tree_hash(str(out)) == (
        '7aeeae0e46096f6f7bf87acf05d711ecda00aa0369e35bfac0988402921ddd11')
    assert 'layout' not in _load(out / 'synthetic_rvos_info.json')['args']


def test_mevis_cli_and_overwrite(tmp_path, capsys):
    assert tool.parse_args([]).layout == 'ytvos'
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('keep me')
    args = ['--out', str(out), '--num-train', '1', '--num-valid', '1',
            '--num-test', '1', '--num-frames', '2', '--size', '64',
            '--layout', 'mevis']
    with pytest.raises(SystemExit, match='not empty'):
        tool.main(args)
    tool.main(args + ['--overwrite'])
    printed = capsys.readouterr().out
    assert 'mevis' in printed and 'multi-object' in printed
    assert 'valid_u: 1 videos' in printed
    stale = out / 'valid_u' / 'JPEGImages' / 'stale_video'
    stale.mkdir()
    tool.main(args + ['--overwrite'])
    assert not stale.exists() and (out / 'notes.txt').exists()
    assert (out / 'valid_u' / 'mask_dict.json').is_file()
    # back to the default layout: the mevis outputs are cleaned up
    tool.main(args[:6] + ['--num-frames', '2', '--size', '64', '--overwrite'])
    assert sorted(os.listdir(out)) == [
        'meta_expressions', 'notes.txt', 'synthetic_rvos_info.json',
        'train', 'valid'
    ]
    assert sorted(os.listdir(out / 'train')) == [
        'Annotations', 'JPEGImages', 'meta.json'
    ]
    with pytest.raises(SystemExit, match='mevis layout only'):
        tool.main(args[:6] + ['--num-test', '2', '--overwrite'])
    with pytest.raises(SystemExit):
        tool.main(args[:6] + ['--layout', 'davis'])

    # a real MeViS root (no synthetic_rvos_info.json) is never deleted
    real = tmp_path / 'mevis'
    (real / 'valid_u' / 'JPEGImages').mkdir(parents=True)
    with pytest.raises(SystemExit, match='not a dataset written by this'):
        tool.main(['--out', str(real)] + args[2:] + ['--overwrite'])
    assert (real / 'valid_u' / 'JPEGImages').is_dir()
