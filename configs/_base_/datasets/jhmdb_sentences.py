# JHMDB-Sentences data settings, ReferFormer protocol (datasets/jhmdb.py):
# evaluation only, with a model trained on A2D-Sentences. Samples: MTTR's
# jhmdb_sentences_samples_metadata.json (3 annotated frames per video), or
# one made by tools/dataset_converters/a2d_sentences_to_json.py jhmdb.
_base_ = './a2d_sentences.py'

dataset_type = 'JHMDBSentencesDataset'
data_root = 'data/jhmdb_sentences/'

train_dataloader = None

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='test',
        ann_file='jhmdb_sentences_samples_metadata.json',
        data_prefix=dict(img_path='Rename_Images', ann_path='puppet_mask'),
        img_suffix='.png',
        test_mode=True,
        pipeline={{_base_.test_pipeline}},
        backend_args={{_base_.backend_args}}))
test_dataloader = val_dataloader
