# Copyright (c) OpenMMLab. All rights reserved.
"""A2D-Sentences / JHMDB-Sentences: converter, datasets, transforms and the
metric on tiny fixtures written in the official formats."""
import csv
import json
import os
import os.path as osp
import random
import shutil

import cv2
import numpy as np
import pytest
import scipy.io
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from dmformer.datasets import (A2DFrameSample, A2DSentencesDataset,
                               JHMDBSentencesDataset)
from dmformer.evaluation.metrics import A2DSentencesMetric
from dmformer.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'dataset_converters',
                'a2d_sentences_to_json.py')
H, W = 32, 48
NUM_A2D_FRAMES = 8
VALUE_STEP = 30  # frame k (1-based) is filled with (k - 1) * VALUE_STEP
META_KEYS = ('video_id', 'exp_id', 'obj_id', 'text', 'frame_ids', 'img_paths',
             'ori_shape', 'img_shape', 'valid_indices')


def _load_tool():
    return load_script(TOOL)


conv = _load_tool()


@pytest.fixture(autouse=True)
def default_scope():
    init_default_scope('dmformer')


def box_mask(y1, y2, x1, x2):
    mask = np.zeros((H, W), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


# A2D masks (H, W) of the fixture: video -> frame -> {instance: mask}
A2D_MASKS = {
    'vidA': {
        3: {
            1: box_mask(4, 12, 6, 20),
            2: box_mask(20, 30, 30, 44)
        },
        6: {
            1: box_mask(2, 10, 25, 47)
        },  # single instance: stored without the N axis
    },
    'vidB': {
        2: {
            1: box_mask(10, 31, 0, 9)
        }
    },
}


def write_h5(path, masks_by_id):
    """Write an A2D .h5 like MATLAB: reMask (N, W, H) or (W, H)."""
    h5py = pytest.importorskip('h5py')
    ids = sorted(masks_by_id)
    stack = np.stack([masks_by_id[i] for i in ids]).astype(np.uint8)
    remask = stack.transpose(0, 2, 1)  # (N, H, W) -> (N, W, H)
    if len(ids) == 1:
        remask = remask[0]
    os.makedirs(osp.dirname(path), exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('reMask', data=remask)
        f.create_dataset('instance', data=np.array(ids, dtype=np.float64))


def write_mp4(path, num_frames):
    os.makedirs(osp.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10, (W, H))
    if not writer.isOpened():
        pytest.skip('OpenCV cannot write mp4 files here')
    for k in range(num_frames):
        writer.write(np.full((H, W, 3), k * VALUE_STEP, dtype=np.uint8))
    writer.release()


def write_a2d(root):
    """The official A2D-Sentences layout (3 videos, vidM missed)."""
    os.makedirs(osp.join(root, 'Release'))
    os.makedirs(osp.join(root, 'text_annotations'))
    with open(osp.join(root, 'Release', 'videoset.csv'), 'w') as f:
        # vid, label, start, end, height, width, frames, annotated, subset
        f.write(f'vidA,11,0,1,{H},{W},{NUM_A2D_FRAMES},2,0\n')
        f.write(f'vidB,21,0,1,{H},{W},{NUM_A2D_FRAMES},1,1\n')
        f.write(f'vidM,21,0,1,{H},{W},{NUM_A2D_FRAMES},1,0\n')
    with open(
            osp.join(root, 'text_annotations', 'a2d_missed_videos.txt'),
            'w') as f:
        f.write('vidM\n')
    with open(
            osp.join(root, 'text_annotations', 'a2d_annotation.txt'),
            'w',
            newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['video_id', 'instance_id', 'query'])
        writer.writerow(['vidA', '1', 'The  Man, running LEFT'])
        writer.writerow(['vidA', '2', 'a dog'])
        writer.writerow(['vidA', '1 (copy)', 'a duplicated man'])
        writer.writerow(['vidB', '1', 'A cat jumping'])
        writer.writerow(['vidM', '1', 'a missed video'])
    for video, frames in A2D_MASKS.items():
        for frame, masks in frames.items():
            write_h5(
                osp.join(root, conv.A2D_MASK_DIR, video, f'{frame:05d}.h5'),
                masks)
        write_mp4(
            osp.join(root, 'Release', 'clips320H', video + '.mp4'),
            NUM_A2D_FRAMES)


@pytest.fixture
def a2d_root(tmp_path):
    root = str(tmp_path / 'a2d_sentences')
    write_a2d(root)
    conv.convert_a2d(root)
    conv.extract_a2d_frames(root, ['vidA', 'vidB'])
    return root


def frame_number(img: torch.Tensor) -> int:
    """1-based frame number written by the fixture (from the pixels)."""
    return int(round(img.float().mean().item() / VALUE_STEP)) + 1


def run_metric(samples):
    metric = A2DSentencesMetric()
    metric.process({}, [s.to_dict() for s in samples])
    return metric.compute_metrics(metric.results)


def perfect(sample):
    """The sample with its ground truth as prediction."""
    pred = InstanceData()
    pred.masks = sample.gt_instances.masks.clone()
    pred.scores = torch.ones(len(pred.masks))
    sample.pred_instances = pred
    return sample


# ----------------------------------------------------------------------
# converter
# ----------------------------------------------------------------------
def test_convert_a2d_sample_lists(a2d_root):
    with open(
            osp.join(
                a2d_root,
                'a2d_sentences_single_frame_train_annotations.json')) as f:
        train = json.load(f)
    with open(
            osp.join(a2d_root,
                     'a2d_sentences_single_frame_test_annotations.json')) as f:
        test = json.load(f)
    # one entry per (expression, .h5 listing the instance); '1 (copy)' and
    # the missed video dropped; the query lower-cased only (MTTR)
    assert train == [['the  man, running left', 'vidA', 3, 1],
                     ['the  man, running left', 'vidA', 6, 1],
                     ['a dog', 'vidA', 3, 2]]
    assert test == [['a cat jumping', 'vidB', 2, 1]]
    # frames k = 1..8 decoded from the mp4, in order
    frames = sorted(os.listdir(osp.join(a2d_root, 'Release/frames/vidA')))
    assert frames == [f'{k:05d}.jpg' for k in range(1, NUM_A2D_FRAMES + 1)]
    img = cv2.imread(osp.join(a2d_root, 'Release/frames/vidA/00005.jpg'))
    assert img.shape == (H, W, 3)
    assert abs(img.mean() - 4 * VALUE_STEP) < VALUE_STEP / 2


def test_convert_a2d_errors(a2d_root):
    ann = osp.join(a2d_root, 'text_annotations', 'a2d_annotation.txt')
    with open(ann, 'a') as f:
        f.write('vidZ,1,a ghost\n')
    with pytest.raises(ValueError, match=r"a2d_annotation.txt.*vidZ"):
        conv.convert_a2d(a2d_root)
    with open(ann, 'w') as f:
        f.write('video_id,instance_id,query\nvidA,x1,a man\n')
    with pytest.raises(ValueError, match="instance_id 'x1'"):
        conv.convert_a2d(a2d_root, splits=['train'])
    with open(ann, 'w') as f:
        f.write('video_id,instance_id,query\nvidA,1,a man\n')
    shutil.rmtree(osp.join(a2d_root, conv.A2D_MASK_DIR, 'vidA'))
    with pytest.raises(FileNotFoundError, match='vidA'):
        conv.convert_a2d(a2d_root, splits=['train'])
    os.remove(osp.join(a2d_root, 'Release', 'clips320H', 'vidB.mp4'))
    with pytest.raises(FileNotFoundError, match='vidB.mp4'):
        conv.extract_a2d_frames(a2d_root, ['vidB'])


# ----------------------------------------------------------------------
# frame sampling
# ----------------------------------------------------------------------
def test_frame_sample_windows():
    sampler = A2DFrameSample(num_frames=5, mode='test')
    # ReferFormer: [f - T // 2, f + (T + 1) // 2) with edge padding
    assert sampler.window_indices(8, 2) == [0, 1, 2, 3, 4]
    assert sampler.window_indices(8, 0) == [0, 0, 0, 1, 2]
    assert sampler.window_indices(8, 7) == [5, 6, 7, 7, 7]
    assert A2DFrameSample(
        num_frames=4, mode='test').window_indices(3, 1) == [0, 0, 1, 2]
    info = dict(
        video_frame_ids=[f'{k:05d}' for k in range(1, 9)],
        img_dir='d',
        img_suffix='.jpg',
        anchor_idx=0)
    out = sampler.transform(dict(info))
    # first position of the (repeated) annotated frame
    assert out['valid_indices'] == [0]
    assert out['frame_id'] == ['00001', '00001', '00001', '00002', '00003']
    assert out['img_path'][3] == osp.join('d', '00002.jpg')
    random.seed(3)
    train = A2DFrameSample(num_frames=5, max_skip=3, mode='train')
    for anchor in range(8):
        out = train.transform(dict(info, anchor_idx=anchor))
        assert len(out['frame_idx']) == 5
        assert out['frame_idx'] == sorted(out['frame_idx'])
        assert out['frame_idx'][out['valid_indices'][0]] == anchor
    with pytest.raises(ValueError, match='anchor_idx'):
        sampler.transform(dict(info, anchor_idx=None))


# ----------------------------------------------------------------------
# A2D dataset + pipeline + metric
# ----------------------------------------------------------------------
def a2d_test_pipeline(num_frames=5):
    return [
        dict(type='A2DFrameSample', num_frames=num_frames, mode='test'),
        dict(type='LoadRVOSFrames'),
        dict(type='LoadA2DAnnotations'),
        dict(type='PackRVOSInputs', meta_keys=META_KEYS),
    ]


def test_a2d_data_list(a2d_root):
    dataset = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=[])
    assert len(dataset) == 3
    info = dataset.get_data_info(2)
    assert info['video_id'] == 'vidA' and info['obj_id'] == 2
    assert info['exp_id'] == '00003_2' and info['text'] == 'a dog'
    assert info['anchor_idx'] == 2 and info['video_length'] == 8
    assert info['mask_file'] == osp.join(a2d_root, conv.A2D_MASK_DIR, 'vidA',
                                         '00003.h5')
    assert dataset.get_data_info(0)['text'] == 'the man, running left'
    with pytest.raises(ValueError, match='does not take'):
        A2DSentencesDataset(data_root=a2d_root, sample_mode='video')


def test_a2d_test_pipeline_and_metric(a2d_root):
    dataset = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=a2d_test_pipeline())
    samples = []
    for idx, (frame, inst) in enumerate([(3, 1), (6, 1), (3, 2)]):
        out = dataset[idx]
        inputs, sample = out['inputs'], out['data_samples']
        assert inputs.shape == (5, 3, H, W)
        # window around 0-based index frame - 1
        center = frame - 1
        expected = [min(max(i, 0), 7) for i in range(center - 2, center + 3)]
        assert [frame_number(img) - 1 for img in inputs] == expected
        assert sample.metainfo['valid_indices'] == [2]
        gt = sample.gt_instances
        assert gt.masks.shape == (5, H, W)
        assert gt.valid.tolist() == [False, False, True, False, False]
        np.testing.assert_array_equal(gt.masks[2].numpy(),
                                      A2D_MASKS['vidA'][frame][inst])
        assert not gt.masks[[0, 1, 3, 4]].any()
        # tight box of the referred instance, mmdet convention
        ys, xs = np.nonzero(A2D_MASKS['vidA'][frame][inst])
        assert gt.bboxes[2].tolist() == [
            xs.min(), ys.min(), xs.max() + 1,
            ys.max() + 1
        ]
        samples.append(perfect(sample))
    metrics = run_metric(samples)
    assert metrics['overall_iou'] == pytest.approx(100)
    assert metrics['mean_iou'] == pytest.approx(100)
    assert metrics['P@0.9'] == pytest.approx(100)
    assert metrics['mAP'] == pytest.approx(100)

    # only the annotated frame counts: garbage elsewhere changes nothing,
    # half of the mask on the annotated frame gives IoU 1/2
    sample = samples[0]
    sample.pred_instances.masks[0] = True
    half = sample.gt_instances.masks[2].clone()
    half[:8] = False  # rows 4..7 of the 8 rows 4..11 are removed
    sample.pred_instances.masks[2] = half
    metrics = run_metric([sample])
    assert metrics['overall_iou'] == pytest.approx(50)
    # (I + 1e-6) / (U + 1e-6) is just above 0.5 (ReferFormer's formula)
    assert metrics['P@0.5'] == 100 and metrics['P@0.6'] == 0


def test_a2d_edge_window_test_split(a2d_root):
    dataset = A2DSentencesDataset(
        data_root=a2d_root, split='test', pipeline=a2d_test_pipeline())
    assert len(dataset) == 1
    sample = dataset[0]['data_samples']
    # frame 2 (index 1): window [-1, 4) -> [0, 0, 1, 2, 3]
    assert sample.metainfo['frame_ids'] == [
        '00001', '00001', '00002', '00003', '00004'
    ]
    assert sample.metainfo['valid_indices'] == [2]
    assert sample.gt_instances.valid.tolist() == [0, 0, 1, 0, 0]
    assert run_metric([perfect(sample)])['mean_iou'] == pytest.approx(100)


def test_a2d_config_train_pipeline(a2d_root):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'datasets', 'a2d_sentences.py'))
    dataset = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=cfg.train_pipeline)
    random.seed(0)
    np.random.seed(0)
    out = dataset[2]
    sample = out['data_samples']
    assert out['inputs'].shape[0] == 5
    (valid_idx, ) = sample.metainfo['valid_indices']
    # the annotated frame is the only valid one (a crop may not remove it:
    # CheckValidFrames resamples then)
    assert sample.gt_instances.valid.tolist() == [
        i == valid_idx for i in range(5)
    ]
    assert sample.text in ('the man, running left', 'the man, running right',
                           'a dog')
    assert sample.gt_instances.masks.shape[1:] == out['inputs'].shape[2:]


def test_a2d_malformed_inputs(a2d_root, tmp_path):
    ann = str(tmp_path / 'samples.json')

    def build(entries, pipeline=()):
        with open(ann, 'w') as f:
            json.dump(entries, f)
        return A2DSentencesDataset(
            data_root=a2d_root, ann_file=ann, pipeline=list(pipeline))

    # expression for a video without frames
    with pytest.raises(FileNotFoundError, match='Release/frames/vidZ'):
        build([['a man', 'vidZ', 3, 1]])
    # annotated frame missing
    with pytest.raises(FileNotFoundError, match=r'vidA/00009\.jpg'):
        build([['a man', 'vidA', 9, 1]])
    # .h5 of the annotated frame missing
    with pytest.raises(FileNotFoundError, match=r'vidA/00004\.h5'):
        build([['a man', 'vidA', 4, 1]])
    # malformed entry
    with pytest.raises(ValueError, match='entry 0'):
        build([['a man', 'vidA', '3', 1]])
    # instance id absent from the .h5
    dataset = build([['a man', 'vidA', 3, 7]], a2d_test_pipeline())
    with pytest.raises(ValueError, match=r'Instance 7.*00003\.h5.*\[1, 2\]'):
        dataset[0]
    # a (non-annotated) frame of the clip missing
    dataset = build([['a man', 'vidA', 3, 1]], a2d_test_pipeline())
    os.remove(osp.join(a2d_root, 'Release', 'frames', 'vidA', '00005.jpg'))
    with pytest.raises(FileNotFoundError, match=r'vidA/00005\.jpg'):
        dataset[0]


# ----------------------------------------------------------------------
# JHMDB
# ----------------------------------------------------------------------
NUM_JHMDB_FRAMES, NUM_JHMDB_MASKS = 6, 5


def jhmdb_mask(t):
    """Puppet mask of frame t (0-based): a box moving right."""
    return box_mask(5, 25, 2 + 4 * t, 14 + 4 * t)


@pytest.fixture
def jhmdb_root(tmp_path):
    root = str(tmp_path / 'jhmdb_sentences')
    frame_dir = osp.join(root, 'Rename_Images', 'wave', 'vidJ')
    os.makedirs(frame_dir)
    for k in range(1, NUM_JHMDB_FRAMES + 1):
        img = np.full((H, W, 3), (k - 1) * VALUE_STEP, dtype=np.uint8)
        cv2.imwrite(osp.join(frame_dir, f'{k:05d}.png'), img)
    mask_dir = osp.join(root, 'puppet_mask', 'wave', 'vidJ')
    os.makedirs(mask_dir)
    # part_mask (H, W, T); the last frame has no mask
    part_mask = np.stack([jhmdb_mask(t) for t in range(NUM_JHMDB_MASKS)],
                         axis=2).astype(np.uint8)
    scipy.io.savemat(
        osp.join(mask_dir, 'puppet_mask.mat'), {'part_mask': part_mask})
    with open(osp.join(root, 'jhmdb_annotation.txt'), 'w') as f:
        f.write('video_id,query\nvidJ,A man  waving his hand\n')
    return root


def test_convert_jhmdb(jhmdb_root):
    out = conv.convert_jhmdb(jhmdb_root, frames_per_video=3, seed=0)
    with open(out) as f:
        samples = json.load(f)
    assert len(samples) == 3
    names = [osp.basename(s[1]) for s in samples]
    assert names == sorted(names) and len(set(names)) == 3
    # frames without a puppet mask (00006) are never drawn
    assert set(names) <= {f'{k:05d}.png' for k in range(1, 6)}
    assert samples[0][0] == 'vidJ'
    assert samples[0][2] == 'puppet_mask/wave/vidJ/puppet_mask.mat'
    assert samples[0][3] == NUM_JHMDB_MASKS
    assert samples[0][4] == 'A man  waving his hand'
    dataset = JHMDBSentencesDataset(data_root=jhmdb_root, pipeline=[])
    assert len(dataset) == 3
    with open(osp.join(jhmdb_root, 'jhmdb_annotation.txt'), 'a') as f:
        f.write('vidX,a ghost\n')
    with pytest.raises(FileNotFoundError, match='vidX'):
        conv.convert_jhmdb(jhmdb_root)


def write_mttr_metadata(root, frames, mask='puppet_mask.mat'):
    """Sample list as shipped by MTTR (paths under ./jhmdb_sentences/)."""
    entries = [[
        'vidJ', f'./jhmdb_sentences/Rename_Images/wave/vidJ/{k:05d}.png',
        f'./jhmdb_sentences/puppet_mask/wave/vidJ/{mask}', NUM_JHMDB_MASKS,
        'A man waving his hand'
    ] for k in frames]
    path = osp.join(root, 'jhmdb_sentences_samples_metadata.json')
    with open(path, 'w') as f:
        json.dump(entries, f)


def test_jhmdb_pipeline_and_metric(jhmdb_root):
    write_mttr_metadata(jhmdb_root, [1, 3, 5])
    dataset = JHMDBSentencesDataset(
        data_root=jhmdb_root, pipeline=a2d_test_pipeline())
    assert len(dataset) == 3
    info = dataset.get_data_info(0)
    assert info['video_frame_ids'] == [
        '00001', '00002', '00003', '00004', '00005'
    ]
    assert info['img_dir'] == osp.join(jhmdb_root, 'Rename_Images', 'wave',
                                       'vidJ')
    samples = []
    # ReferFormer's 1-based window clamped to [1, total]: frame 1 ->
    # [1, 1, 1, 2, 3], valid 0; frame 5 -> [3, 4, 5, 5, 5], valid 2
    expected = {
        1: ([1, 1, 1, 2, 3], 0),
        3: ([1, 2, 3, 4, 5], 2),
        5: ([3, 4, 5, 5, 5], 2)
    }
    for idx, frame in enumerate([1, 3, 5]):
        out = dataset[idx]
        sample = out['data_samples']
        frames, valid_idx = expected[frame]
        assert [frame_number(img) for img in out['inputs']] == frames
        assert sample.metainfo['valid_indices'] == [valid_idx]
        np.testing.assert_array_equal(
            sample.gt_instances.masks[valid_idx].numpy(),
            jhmdb_mask(frame - 1))
        assert sample.gt_instances.valid.sum() == 1
        samples.append(perfect(sample))
    metrics = run_metric(samples)
    assert metrics['overall_iou'] == pytest.approx(100)
    assert metrics['mAP'] == pytest.approx(100)


def test_jhmdb_malformed_inputs(jhmdb_root):
    write_mttr_metadata(jhmdb_root, [2], mask='missing.mat')
    with pytest.raises(FileNotFoundError, match='vidJ/missing.mat'):
        JHMDBSentencesDataset(data_root=jhmdb_root)
    write_mttr_metadata(jhmdb_root, [6])  # beyond video_total_frames
    with pytest.raises(ValueError, match='annotated frame 6'):
        JHMDBSentencesDataset(data_root=jhmdb_root)
    os.remove(
        osp.join(jhmdb_root, 'Rename_Images', 'wave', 'vidJ', '00002.png'))
    write_mttr_metadata(jhmdb_root, [2])
    with pytest.raises(FileNotFoundError, match=r'vidJ/00002\.png'):
        JHMDBSentencesDataset(data_root=jhmdb_root)
    # a neighbour frame of the clip missing: named by LoadRVOSFrames
    write_mttr_metadata(jhmdb_root, [3])
    dataset = JHMDBSentencesDataset(
        data_root=jhmdb_root, pipeline=a2d_test_pipeline())
    with pytest.raises(FileNotFoundError, match=r'vidJ/00002\.png'):
        dataset[0]
    # a part_mask with fewer frames than the sample list claims
    cv2.imwrite(
        osp.join(jhmdb_root, 'Rename_Images', 'wave', 'vidJ', '00002.png'),
        np.zeros((H, W, 3), np.uint8))
    scipy.io.savemat(
        osp.join(jhmdb_root, 'puppet_mask', 'wave', 'vidJ', 'puppet_mask.mat'),
        {'part_mask': np.zeros((H, W, 2), np.uint8)})
    with pytest.raises(ValueError, match=r'out of range.*puppet_mask\.mat'):
        dataset[0]
