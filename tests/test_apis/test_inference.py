# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch

from dmformer.apis import get_test_scale, inference_clip, init_model

TINY_CFG = 'configs/dmformer/dmformer_tiny_synthetic.py'


@pytest.fixture(scope='module')
def tiny_model():
    torch.manual_seed(0)
    return init_model(TINY_CFG)


def test_init_model_refuses_a_checkpoint_of_another_model(tmp_path,
                                                          tiny_model):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=state), good)
    loaded = init_model(TINY_CFG, good)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key

    key = 'bbox_head.cls_branches.0.weight'
    state.pop(key)
    state['extra.weight'] = torch.zeros(1)
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=state), bad)
    with pytest.raises(ValueError) as info:
        init_model(TINY_CFG, bad)
    message = str(info.value)
    assert message.startswith(f'{bad} does not fit the config')
    assert f'1 of the model\'s parameters are missing (e.g. {key})' \
        in message
    assert 'extra.weight' in message and '\n' not in message
    # explicit partial loading: the rest comes from the file
    with pytest.warns(UserWarning, match='loaded partially'):
        partial = init_model(TINY_CFG, bad, strict=False)
    head_w = 'bbox_head.cls_branches.1.weight'
    assert torch.equal(partial.state_dict()[head_w], state[head_w])

    not_ckpt = str(tmp_path / 'list.pth')
    torch.save([1, 2], not_ckpt)
    with pytest.raises(ValueError, match='not a checkpoint'):
        init_model(TINY_CFG, not_ckpt)


def test_init_model_and_test_scale(tiny_model):
    assert not tiny_model.training
    assert get_test_scale(tiny_model.cfg) == 112


def test_inference_clip(tiny_model):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
              for _ in range(3)]
    results = inference_clip(tiny_model, frames,
                             ['The  RED circle', 'a blue square'])
    assert len(results) == 2
    for res in results:
        assert res.pred_instances.masks.shape == (3, 50, 70)
        assert res.pred_instances.masks.dtype == torch.bool
        assert res.metainfo['img_shape'] == (112, 157)
    # the caption is cleaned like the datasets do
    assert results[0].metainfo['text'] == 'the red circle'
    assert results[0].metainfo['pred_subject'] in 'the red circle'


def test_inference_clip_shares_the_visual_features(tiny_model):
    """Several sentences on one clip run the backbone once, and give the
    masks and scores of one-by-one runs."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
              for _ in range(2)]
    texts = ['the red circle', 'a small blue square moving to the left',
             'the dog']
    calls = []
    handle = tiny_model.backbone.register_forward_hook(
        lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        together = inference_clip(tiny_model, frames, texts)
        assert calls == [2]  # one clip of 2 frames, not 3 x 2
        alone = [inference_clip(tiny_model, frames, [t])[0] for t in texts]
    finally:
        handle.remove()
    for a, b in zip(alone, together):
        assert torch.equal(a.pred_instances.masks, b.pred_instances.masks)
        torch.testing.assert_close(
            a.pred_instances.scores, b.pred_instances.scores, atol=1e-5,
            rtol=0)
        assert a.metainfo['pred_subject'] == b.metainfo['pred_subject']


def test_inference_clip_bad_input(tiny_model):
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match='no frames'):
        inference_clip(tiny_model, [], ['a dog'])
    with pytest.raises(ValueError, match='differ in size'):
        inference_clip(tiny_model, [frame, frame[:16]], ['a dog'])
    with pytest.raises(ValueError, match='empty'):
        inference_clip(tiny_model, [frame], ['   '])
    with pytest.raises(ValueError, match='uint8'):
        inference_clip(tiny_model, [frame.astype(np.float32)], ['a dog'])
    with pytest.raises(ValueError, match=r'frame 0 must be .* got uint8 '
                       r'\(32, 32\)'):
        inference_clip(tiny_model, [frame[..., 0]], ['a dog'])  # grey
    with pytest.raises(ValueError, match='frame 1 must be .* got list'):
        inference_clip(tiny_model, [frame, [[0]]], ['a dog'])


def test_inference_pipeline_is_the_test_pipeline(tmp_path):
    """inference_clip preprocesses frames in memory exactly as tools/test.py
    preprocesses them from the dataset: same tensor, same metainfo."""
    import cv2
    from mmengine.config import Config

    from dmformer.apis import build_inference_pipeline
    from dmformer.datasets import RefYouTubeVOSDataset
    from dmformer.datasets.synthetic_rvos import make_synthetic_rvos

    root = str(tmp_path / 'data') + '/'
    make_synthetic_rvos(
        root, num_train=1, num_valid=1, num_frames=3, size=64, seed=0)
    cfg = Config.fromfile(TINY_CFG)
    test_cfg = cfg.test_dataloader.dataset
    dataset = RefYouTubeVOSDataset(
        data_root=root,
        split='valid',
        ann_file=test_cfg.ann_file,
        exclude_ann_file=test_cfg.exclude_ann_file,
        data_prefix=test_cfg.data_prefix,
        sample_mode='video',
        test_mode=True,
        pipeline=test_cfg.pipeline)
    item = dataset[0]
    meta = item['data_samples'].metainfo
    frames = [cv2.imread(p) for p in meta['img_paths']]
    packed = build_inference_pipeline(cfg)(
        dict(
            img=frames,
            frame_id=list(meta['frame_ids']),
            video_id='demo',
            exp_id='0',
            text=meta['text'],
            ori_text=meta['text']))
    assert torch.equal(packed['inputs'], item['inputs'])
    got = packed['data_samples'].metainfo
    for key in ('img_shape', 'ori_shape', 'scale_factor', 'frame_ids',
                'text', 'noun_chunks'):
        assert got[key] == meta[key], key
    # a test_scale replaces the config's short side
    small = build_inference_pipeline(cfg, test_scale=32)(
        dict(img=frames, text='a dog', ori_text='a dog'))
    assert small['data_samples'].metainfo['img_shape'] == (32, 32)
    cfg.test_dataloader.dataset.pipeline = [dict(type='PackRVOSInputs')]
    with pytest.raises(ValueError, match='has no LoadRVOSFrames step'):
        build_inference_pipeline(cfg)
