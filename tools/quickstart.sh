#!/usr/bin/env bash
# The main job on the built-in default data, from a fresh machine:
#   1. install the pinned stack and dmformer (tools/install_deps.sh),
#   2. generate the synthetic Ref-YouTube-VOS-layout dataset,
#   3. train the tiny DMFormer config on CPU (8-10.5 minutes, 2 cores,
#      validated along the way) and plot its learning curve,
#   4. evaluate J&F, the swap pairs and the chosen subject phrases on the
#      synthetic valid split (+ a submission zip), and on a valid split
#      drawn with another seed (HELDOUT_SEED, default 1234),
#   5. run the demo on a valid video with a swap pair of sentences and score
#      its masks against the video's ground truth.
# Re-running reuses the installed packages and the generated data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
cd "$ROOT"

bash tools/install_deps.sh

DATA=data/synthetic-rvos
CONFIG=configs/dmformer/dmformer_tiny_synthetic_attr-pretrained.py
WORK=${WORK_DIR:-work_dirs/quickstart}
NUM_TRAIN=600  # training videos of the built-in data (valid: 12 videos)

# (re)generate the data unless it is there with these settings
if ! "$PYTHON" - "$DATA" "$NUM_TRAIN" <<'PY'
import json, sys
try:
    info = json.load(open(f'{sys.argv[1]}/synthetic_rvos_info.json'))
    ok = info['args']['num_train'] == int(sys.argv[2]) and \
        info['args']['seed'] == 0
except (OSError, ValueError, KeyError):
    ok = False
sys.exit(0 if ok else 1)
PY
then
  echo "[quickstart] generating the synthetic dataset in $DATA"
  "$PYTHON" tools/dataset_converters/make_synthetic_rvos.py --out "$DATA" \
    --num-train "$NUM_TRAIN" --seed 0 --overwrite
fi

echo "[quickstart] training $CONFIG (work dir $WORK)"
START=$(date +%s)
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK"
TRAIN_SECONDS=$(( $(date +%s) - START ))
CKPT=$(cat "$WORK/last_checkpoint")
"$PYTHON" tools/analysis_tools/plot_learning_curve.py "$WORK" \
  --title "$(basename "$CONFIG" .py)"

echo "[quickstart] evaluating $CKPT on the synthetic valid split"
"$PYTHON" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test" \
  | tee "$WORK/test_metrics.txt"

# the same checkpoint on a valid split drawn with another generator seed:
# new videos and sentences, so the score must come from the learned task
HELDOUT_SEED=${HELDOUT_SEED:-1234}
HELDOUT=data/synthetic-rvos-valid-seed$HELDOUT_SEED
if [ ! -f "$HELDOUT/synthetic_rvos_info.json" ]; then
  "$PYTHON" tools/dataset_converters/make_synthetic_rvos.py --out "$HELDOUT" \
    --num-train 1 --seed "$HELDOUT_SEED" --overwrite
fi
echo "[quickstart] evaluating on the valid split of seed $HELDOUT_SEED"
"$PYTHON" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test_seed$HELDOUT_SEED" \
  --data-root "$HELDOUT" | tee "$WORK/test_metrics_seed$HELDOUT_SEED.txt"

# the first swap pair of the valid split: same words, different objects
PAIR_FILE="$WORK/demo_pair.json"
"$PYTHON" - "$DATA" "$PAIR_FILE" <<'PY'
import json, sys
root, out = sys.argv[1:]
pairs = json.load(open(f'{root}/meta_expressions/valid/swap_pairs.json'))
meta = json.load(open(f'{root}/meta_expressions/valid/meta_expressions.json'))
(vid, a), (_, b) = pairs['pairs'][0]
exps = meta['videos'][vid]['expressions']
json.dump(dict(video=vid, texts=[exps[a]['exp'], exps[b]['exp']],
               obj_ids=[exps[a]['obj_id'], exps[b]['obj_id']]),
          open(out, 'w'))
PY
VIDEO=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['video'])" "$PAIR_FILE")
mapfile -t TEXTS < <("$PYTHON" -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))['texts']))" "$PAIR_FILE")
echo "[quickstart] demo on $VIDEO: \"${TEXTS[0]}\" / \"${TEXTS[1]}\""
"$PYTHON" demo/video_demo.py "$DATA/valid/JPEGImages/$VIDEO" "$CONFIG" \
  "$CKPT" --text "${TEXTS[@]}" --out-dir "$WORK/demo" --overwrite
"$PYTHON" tools/analysis_tools/score_demo_masks.py "$WORK/demo" \
  "$DATA/valid/Annotations/$VIDEO" --obj-ids $("$PYTHON" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['obj_ids']))" "$PAIR_FILE") \
  | tee "$WORK/demo_iou.txt"

metric() {  # the last value of a metric in a test log, 2 decimals
  local v
  v=$(grep -o "$1: [0-9.]*" "${2:-$WORK/test_metrics.txt}" | tail -1 | cut -d' ' -f2)
  if [ -n "$v" ]; then printf '%.2f' "$v"; else printf 'n/a'; fi
}
echo
echo "[quickstart] done."
echo "  training time:     ${TRAIN_SECONDS} s (tools/train.py, validation included)"
echo "  checkpoint:        $CKPT"
echo "  learning curve:    $WORK/learning_curve.png"
echo "  J&F (valid split): $(metric 'ref_ytvos/J&F')"
echo "  swap pairs solved: $(metric 'ref_ytvos/swap_pairs_solved' | cut -d. -f1) of $(metric 'ref_ytvos/num_swap_pairs' | cut -d. -f1) (both sentences J > 0.5)"
echo "  subject phrases:   $(metric 'ref_ytvos/subject_acc')% chosen right"
SEED_METRICS="$WORK/test_metrics_seed$HELDOUT_SEED.txt"
echo "  valid split of seed $HELDOUT_SEED: J&F $(metric 'ref_ytvos/J&F' "$SEED_METRICS"), swap pairs solved $(metric 'ref_ytvos/swap_pairs_solved' "$SEED_METRICS" | cut -d. -f1) of $(metric 'ref_ytvos/num_swap_pairs' "$SEED_METRICS" | cut -d. -f1), subject phrases $(metric 'ref_ytvos/subject_acc' "$SEED_METRICS")%"
echo "  submission zip:    $(ls -d "$WORK"/test/*/RefYTVOSSubmissionMetric/submission.zip | tail -n 1)"
echo "  demo ($VIDEO):   $WORK/demo/overlay.mp4, $WORK/demo/strip.png"
sed 's/^/    /' "$WORK/demo_iou.txt"
