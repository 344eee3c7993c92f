# The main job's recipe (tools/quickstart.sh): the tiny synthetic recipe
# with a pre-trained, frozen backbone and the object-expression contrast
# head, mask losses at the input resolution. Over 3 training seeds
# (docs/en/notes/synthetic_recipe.md): J&F 78.2 +- 0.5 and 9-10 of 11 swap
# pairs on the seed-0 valid split, 72.5 +- 0.6 and 8-10 of 12 on the
# held-out split of seed 1234, after 1050 iterations (8-10.5 minutes on
# 2 idle cores).
#
# * backbone: the tiny Swin pre-trained by
#   tools/misc/pretrain_attribute_backbone.py (2,500 steps of per-pixel
#   shape / colour / size / texture segmentation of frames generated with
#   seed 7, never the data's seeds), then frozen, as the paper freezes
#   GLIP's Swin-T;
# * referent_head: every expression of the clip's video picks its referent
#   among the clip's objects on the text-free visual features (training
#   only; it needs every object's mask, hence with_seg_map and
#   with_video_expressions);
# * mask losses on the logits upsampled to the input size (as the prediction
#   does) against the full-resolution GT masks: the stride-4 point samples
#   of ReferFormer's loss cap J at about 0.78 on these small objects.
_base_ = './dmformer_tiny_synthetic.py'

model = dict(
    train_cfg=dict(mask_loss_upsample=True),
    backbone=dict(
        frozen=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/tiny-swin_attr-pretrain_seed7.pth',
            prefix='backbone.')),
    referent_head=dict(
        type='ReferentContrastHead',
        in_channels=64,
        text_channels=64,
        embed_dims=128,
        loss_referent=dict(type='mmdet.CrossEntropyLoss', loss_weight=2.0)))

train_pipeline = [
    dict(type='RVOSFrameSample', num_frames=3, max_skip=3, mode='train'),
    dict(type='LoadRVOSFrames'),
    dict(type='LoadRVOSAnnotations', with_seg_map=True),
    dict(type='VideoRandomFlip', prob=0.5),
    dict(type='VideoRandomResize', scales=[96, 112, 128], max_size=160),
    dict(type='CheckValidFrames'),
    dict(type='ExtractNounChunks', method='pos_rule'),
    dict(type='LoadSubjectSpan'),
    dict(type='PackRVOSInputs'),
]
train_dataloader = dict(
    dataset=dict(with_video_expressions=True, pipeline=train_pipeline))
