# The MeViS evaluation-server split: tools/test.py writes
# Annotations/<video>/<exp_id>/<frame>.png for every expression of
# valid/meta_expressions.json and zips them (submission.zip) under the run's
# log folder <work-dir>/<timestamp>/MeViSSubmissionMetric/.
_base_ = './dmformer_swin-t_4xb1-6e_ref-ytvos-ft_mevis.py'

test_dataloader = dict(dataset=dict(split='valid'))
test_evaluator = dict(
    _delete_=True,
    type='MeViSSubmissionMetric',
    outfile_prefix=(
        'work_dirs/dmformer_swin-t_4xb1-6e_ref-ytvos-ft_mevis/valid'),
    meta_file='data/mevis/valid/meta_expressions.json')
