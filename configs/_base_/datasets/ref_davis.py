# Ref-DAVIS17 data settings: zero-shot test of a model trained
# on Ref-YouTube-VOS. Convert the data first with
# tools/dataset_converters/convert_davis_to_ytvos.py. The official protocol
# evaluates the 4 expression sets separately (annotator 0..3) and averages
# their J&F, e.g. --cfg-options test_dataloader.dataset.annotator=1.
_base_ = './ref_youtube_vos.py'

dataset_type = 'RefDAVISDataset'
data_root = 'data/ref-davis/'

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='valid',
        annotator=0,
        ann_file='meta_expressions/valid/meta_expressions.json',
        data_prefix=dict(
            img_path='valid/JPEGImages', ann_path='valid/Annotations'),
        meta_file='valid/meta.json',
        sample_mode='video',
        test_mode=True,
        pipeline={{_base_.test_pipeline}},
        backend_args={{_base_.backend_args}}))
test_dataloader = val_dataloader
