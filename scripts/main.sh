#!/usr/bin/env bash
# The main job: set up, then predict the best partitions of vgg19 on the bundled legacy measurements.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p results
echo "== scission predict: vgg19, wireless network, device runs >= 1 block, layer 10 on the edge, 16 in the cloud"
.venv/bin/scission predict tests/data/legacy network_stats.csv vgg19 -d '!-1' -e 10 -c 16 \
  --plot results/vgg19-best.png
echo "== scission predict: mobilenet, unconstrained"
.venv/bin/scission predict tests/data/legacy network_stats.csv mobilenet
echo "plot of the best vgg19 configuration: results/vgg19-best.png"
