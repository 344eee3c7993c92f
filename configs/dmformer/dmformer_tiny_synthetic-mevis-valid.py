# The synthetic MeViS-layout split without ground truth ('valid'):
# tools/test.py writes the server layout (Annotations/<video>/<exp_id>/
# <frame>.png) for every expression and zips it under
# <work-dir>/<timestamp>/MeViSSubmissionMetric/.
_base_ = './dmformer_tiny_synthetic-mevis.py'

test_dataloader = dict(dataset=dict(split='valid'))
test_evaluator = dict(
    _delete_=True,
    type='MeViSSubmissionMetric',
    outfile_prefix='work_dirs/synthetic_mevis_valid_submission',
    meta_file='data/synthetic-mevis/valid/meta_expressions.json')
