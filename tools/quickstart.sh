#!/usr/bin/env bash
# The main job on the built-in default data, from a fresh machine:
#   1. install the pinned stack and dmformer (tools/install_deps.sh),
#   2. generate the synthetic Ref-YouTube-VOS-layout dataset,
#   3. train the tiny DMFormer config on CPU (about 10 minutes, 2 cores),
#   4. evaluate J&F on the synthetic valid split (+ a submission zip),
#   5. run the demo on a valid video with a swap pair of sentences.
# Re-running reuses the installed packages and the generated data.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
cd "$ROOT"

bash tools/install_deps.sh

DATA=data/synthetic-rvos
CONFIG=configs/dmformer/dmformer_tiny_synthetic.py
WORK=${WORK_DIR:-work_dirs/quickstart}

if [ ! -f "$DATA/meta_expressions/valid/meta_expressions.json" ]; then
  echo "[quickstart] generating the synthetic dataset in $DATA"
  "$PYTHON" tools/dataset_converters/make_synthetic_rvos.py --out "$DATA"
fi

echo "[quickstart] training $CONFIG (work dir $WORK)"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK" --no-validate
CKPT=$(cat "$WORK/last_checkpoint")

echo "[quickstart] evaluating $CKPT on the synthetic valid split"
"$PYTHON" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test" \
  | tee "$WORK/test_metrics.txt"

# the first swap pair of the valid split: same words, different objects
read -r VIDEO TEXT_A TEXT_B < <("$PYTHON" - "$DATA" <<'PY'
import json, sys
root = sys.argv[1]
pairs = json.load(open(f'{root}/meta_expressions/valid/swap_pairs.json'))
meta = json.load(open(f'{root}/meta_expressions/valid/meta_expressions.json'))
(vid, a), (_, b) = pairs['pairs'][0]
exps = meta['videos'][vid]['expressions']
print(vid, exps[a]['exp'].replace(' ', '_'), exps[b]['exp'].replace(' ', '_'))
PY
)
TEXT_A=${TEXT_A//_/ }
TEXT_B=${TEXT_B//_/ }
echo "[quickstart] demo on $VIDEO: \"$TEXT_A\" / \"$TEXT_B\""
"$PYTHON" demo/video_demo.py "$DATA/valid/JPEGImages/$VIDEO" "$CONFIG" \
  "$CKPT" --text "$TEXT_A" "$TEXT_B" --out-dir "$WORK/demo"

echo
echo "[quickstart] done."
echo "  checkpoint:        $CKPT"
echo "  J&F (valid split): $(grep -o "ref_ytvos/J&F: [0-9.]*" "$WORK/test_metrics.txt" | tail -1)"
echo "  submission zip:    $WORK/test/RefYTVOSSubmissionMetric/submission.zip"
echo "  demo overlay:      $WORK/demo/overlay.mp4 (frames in $WORK/demo/overlay/)"
