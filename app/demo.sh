#!/usr/bin/env bash
# The demo behind './lab demo': what MSConv Lab shows on this machine with nothing downloaded.
# The operator library and the complexity of MSConv, SKNet and SCConv networks side by side (the
# parameter and MAC columns of the paper's Tables 7-8), then the embedded synthetic face set,
# generated on first use and cached under out/demo/, and three tiny-preset networks (MSConv,
# SKNet, SCConv) that train on it.
#   With a display: the workbench (msconv-lab) opens on the demo workspace out/demo/lab with the
#   three runs queued; "Train queued" (Ctrl+R) trains them, then Evaluation, Inspect and Compare
#   work on what they trained.
#   Without one (or with MSCONV_DEMO_HEADLESS=1): the same flow through the command line; the
#   runs train one after another, are evaluated and inspected, and a report folder (figures as
#   PNG, metrics as JSON, index.html) is written under out/demo/report; its path is printed.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
msconv="$build/bin/msconv"
lab="$build/bin/msconv-lab"
faces="$root/out/demo/faces"
ws="$root/out/demo/lab"
report="$root/out/demo/report"

echo "== MSConv Lab: operators and architectures =="
"$msconv" info --list
echo
echo "== MSNet-50 at 112x112: the 3x3 operator is the only difference between the networks =="
"$msconv" info --arch msnet50 --op msconv-official --op msconv --op skconv --op scconv --op ghost \
  --op ghostv2 --op pconv --op star --op conv3x3
echo
echo "== The paper's Table 8 complexity beside ours =="
"$msconv" info --paper
echo
echo "== The paper's ablation rows (Table 6) on MSNet-50 =="
"$msconv" info --arch msnet50 --op msconv --op 'msconv*' --op msconv-mo --op msconv-so --op msconv-mo-so
echo
echo "== CPU presets (what the demo trains) =="
"$msconv" info --arch msnet-tiny --op msconv-official --op skconv --op scconv
echo
echo "== The embedded synthetic face set =="
if [ ! -f "$faces/synth.json" ]; then
  "$msconv" data synth -o "$faces" --sheet "$root/out/demo/contact_sheet.png"
fi
"$msconv" data info "$faces"
"$msconv" data info "$faces/val.bin"
echo "contact sheet: $root/out/demo/contact_sheet.png"
echo

# The comparison: the same tiny network and schedule, only the 3x3 operator differs, each
# operator trained with three seeds (a study: msconv study run), so that the comparison comes with
# its uncertainty. Nine runs of 84 steps take about the time three runs of two epochs took.
study="$root/out/demo/demo-study.json"
cat > "$study" <<EOF
{"name": "demo",
 "base": {"model.arch": "msnet-tiny", "train.batch_size": 64, "train.max_steps": 84,
          "train.lr": 0.1, "train.log_every": 4, "train.val_every": 42, "train.checkpoint_every": 42,
          "data.train": "$faces", "data.val": "$faces/val.bin"},
 "axes": {"model.op": ["msconv-official", "skconv", "scconv"]},
 "seeds": [0, 1, 2],
 "reference": {"model.op": "msconv-official"}}
EOF
# The runs' names and settings (NAME, a tab, key=value ...), the first seed's three first.
study_runs=$("$msconv" study status "$study" --workspace "$ws" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = [(r["seed"] != d["seeds"][0], r["run"], " ".join(r["settings"]))
        for c in d["cells"] for r in c["runs"]]
for _, run, settings in sorted(rows, key=lambda x: x[0]):
    print(run + "\t" + settings)')
mapfile -t names < <(printf '%s\n' "$study_runs" | head -n 3 | cut -f1)  # seed 0 of each operator
img=$(ls "$faces"/train/*/000.jpg | tail -n 1)
ref=$(dirname "$img")/001.jpg

if [ -z "${MSCONV_DEMO_HEADLESS:-}" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
  echo "== The workbench: $ws =="
  echo "A study is queued: MSConv, SKNet and SCConv on msnet-tiny, three seeds each (9 runs of"
  echo "84 steps). Press 'Train queued' (Ctrl+R) and watch the Training tab (group by study cell"
  echo "for the mean curves with their bands); the Study tab's Report then gives the comparison"
  echo "with its uncertainty, and Evaluation, Inspect and Compare work on what they trained."
  echo "The Inspect panel starts on $img."
  mkdir -p "$ws/studies"
  cp "$study" "$ws/studies/demo.json"
  args=()
  while IFS=$'\t' read -r name settings; do
    "$msconv" runs list --workspace "$ws" 2>/dev/null | grep -qE "^[0-9]+ +$name +.* done " ||
      args+=(--enqueue "$name" "$settings")
  done <<< "$study_runs"
  # MSCONV_DEMO_SCREENSHOTS=DIR: train the queue at once and save a screenshot of each panel
  # into DIR (how docs/lab-*.png are made: under xvfb-run).
  if [ -n "${MSCONV_DEMO_SCREENSHOTS:-}" ]; then
    args+=(--train-queued --screenshot "$MSCONV_DEMO_SCREENSHOTS")
  fi
  rc=0
  "$lab" "$ws" "${args[@]}" --image "$img" --reference "$ref" || rc=$?
  [ "$rc" -eq 0 ] && exit 0
  # Killed by a signal, as Qt aborts when the display cannot be opened: go on headless.
  [ "$rc" -lt 128 ] && exit "$rc"
  echo "msconv-lab could not keep a window open on '${DISPLAY:-$WAYLAND_DISPLAY}' (exit $rc)."
  echo
fi

echo "== No display: the same flow headless, through the command line =="
# The window may have queued the runs before it failed to open: the study trains them now.
rm -f "$ws/lab-queue.json"
echo "-- msconv study run: 3 operators x 3 seeds (runs trained earlier are kept; remove $ws to train again)"
"$msconv" study run "$study" --workspace "$ws"
"$msconv" study status demo --workspace "$ws"
echo
echo "== The comparison with its uncertainty (msconv study report) =="
"$msconv" study report demo --workspace "$ws"
echo
"$msconv" runs list --workspace "$ws"
echo
echo "== Evaluation: 10-fold accuracy, VAL, TAR@FAR, AUC on held-out identities =="
for name in "${names[@]}"; do
  echo "-- $name"
  "$msconv" eval --checkpoint "$ws/runs/$name/best.ckpt" --bin "$faces/val.bin" \
    --roc-dir "$report/roc/$name"
done
echo
echo "== Side by side (paper Tables 7-8 layout) =="
"$msconv" compare "${names[@]}" --workspace "$ws"
echo
echo "== Report: training curves, ROC, feature maps (Fig. 6), Grad-CAM across stages (Fig. 7) =="
index=$("$lab" "$ws" --report "$report" --image "$img" --reference "$ref")
echo "report: $index"
