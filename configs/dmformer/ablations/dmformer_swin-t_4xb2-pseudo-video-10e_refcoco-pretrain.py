# Pre-training on RefCOCO/+/g turned into 5-frame pseudo videos (random
# affine/perspective + photometric copies of each image, masks warped alike)
# instead of single frames. (Lists replace on inheritance, so the three
# datasets are spelled out with the pseudo-video pipeline.)
_base_ = '../dmformer_swin-t_4xb2-10e_refcoco-pretrain.py'

_pipeline = {{_base_.pseudo_video_train_pipeline}}
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(
            type='RefCOCODataset',
            data_root='data/coco/',
            ann_file=f'{name}/instances_{name}_train.json',
            data_prefix=dict(img_path='train2014/'),
            pipeline=_pipeline)
        for name in ('refcoco', 'refcoco+', 'refcocog')
    ]))
