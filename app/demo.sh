#!/usr/bin/env bash
# The demo behind './lab demo': what MSConv Lab shows on this machine with nothing downloaded.
# The operator library and the complexity of MSConv, SKNet and SCConv networks side by side (the
# parameter and MAC columns of the paper's Tables 7-8), then the embedded synthetic face set,
# generated on first use and cached under out/demo/, and a tiny MSConv network trained on it.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
msconv="$build/bin/msconv"
faces="$root/out/demo/faces"

echo "== MSConv Lab: operators and architectures =="
"$msconv" info --list
echo
echo "== MSNet-50 at 112x112: the 3x3 operator is the only difference between the networks =="
"$msconv" info --arch msnet50 --op msconv-official --op msconv --op skconv --op scconv --op conv3x3
echo
echo "== The paper's ablation rows (Table 6) on MSNet-50 =="
"$msconv" info --arch msnet50 --op msconv --op 'msconv*' --op msconv-mo --op msconv-so --op msconv-mo-so
echo
echo "== CPU presets (what the demo trains) =="
"$msconv" info --arch msnet-tiny --op msconv-official --op skconv --op scconv
"$msconv" info --arch iresnet-tiny
echo
echo "== The embedded synthetic face set =="
if [ ! -f "$faces/synth.json" ]; then
  "$msconv" data synth -o "$faces" --sheet "$root/out/demo/contact_sheet.png"
fi
"$msconv" data info "$faces"
"$msconv" data info "$faces/val.bin"
echo "contact sheet: $root/out/demo/contact_sheet.png"
echo
echo "== Training a tiny MSConv network on it (2 epochs, validation on held-out identities) =="
"$msconv" train --workspace "$root/out/demo/runs" --name msnet-tiny-msconv \
  --set model.arch=msnet-tiny --set model.op=msconv-official --set train.batch_size=64 \
  --set train.epochs=2 --set train.lr=0.1 --set train.log_every=25 \
  --set data.train="$faces" --set data.val="$faces/val.bin"
"$msconv" runs list --workspace "$root/out/demo/runs"
echo
echo "== Evaluation: 10-fold accuracy, VAL, TAR@FAR, AUC; ROC curves as CSV =="
ckpt="$root/out/demo/runs/runs/msnet-tiny-msconv/best.ckpt"
"$msconv" eval --checkpoint "$ckpt" --bin "$faces/val.bin" --roc-dir "$root/out/demo/roc"
if [ ! -d "$root/out/demo/ijb/meta" ]; then
  "$msconv" data synth-ijb -o "$root/out/demo/ijb" --identities 40
fi
"$msconv" eval --checkpoint "$ckpt" --ijb "$root/out/demo/ijb" --roc-dir "$root/out/demo/roc"
echo "ROC curves: $root/out/demo/roc/"
echo
echo "== The run next to its peers' complexity (paper Tables 7-8 layout) =="
"$msconv" compare msnet-tiny-msconv --workspace "$root/out/demo/runs"
echo
echo "== Inspection: branch feature maps (paper Fig. 6) and Grad-CAM across stages (Fig. 7) =="
img=$(ls "$faces"/train/*/000.jpg | tail -n 1)
ref=$(dirname "$img")/001.jpg
"$msconv" featuremaps --checkpoint "$ckpt" --image "$img" -o "$root/out/demo/featuremaps.png"
"$msconv" gradcam --checkpoint "$ckpt" --image "$img" --reference "$ref" \
  -o "$root/out/demo/gradcam.png"
