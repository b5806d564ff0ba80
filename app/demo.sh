#!/usr/bin/env bash
# The demo behind './lab demo': what MSConv Lab can show on this machine with nothing downloaded.
# Today: the operator library and the complexity of MSConv, SKNet and SCConv networks side by side
# (paper Tables 7-8's parameter and MAC columns), at full size and for the CPU presets the demo
# trains.
set -euo pipefail
build=${1:-build}
msconv="$build/bin/msconv"

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
