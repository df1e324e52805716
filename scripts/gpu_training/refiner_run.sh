#!/bin/bash
# One call on the GPU box (repo root as working directory, gpu/rpack carried along): unpack the
# training crops, harvest the predictor's coarse states once (working sizes 512 and 160) and
# fine-tune the refiner of the shipped checkpoint in the variants below, each while time is left
# (BUDGET_S seconds from the start of the script). Leaves NAME.pt, NAME_best.pt and run.log in $OUT
# (at most 8 files come back). DEVICE=cpu EXTRA="--limit 4 --steps 4" tries it out here.
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" /tmp/pkg/clickmatte && ln -sfn "$PWD/model" /tmp/pkg/clickmatte/model
export PYTHONPATH=/tmp/pkg
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 scripts/gpu_training/refiner_pack.py unpack /tmp/rdata || exit 3
budget=${BUDGET_S:-480}
POOL=${POOL:-/tmp}
variant() {
  local name=$1; shift
  local left=$(( budget - SECONDS ))
  if (( left < 30 )); then echo "skipped $name: ${left} s left"; return; fi
  timeout "$left" python3 scripts/finetune_refiner.py --data /tmp/rdata --checkpoint model/weights/clickmatte_lite0.pt \
    --device "${DEVICE:-cuda}" --threads 8 --working-sizes 512,160 --pool "$POOL/p512.npz,$POOL/p160.npz" \
    --out "$OUT/$name.pt" --best-out "$OUT/${name}_best.pt" --eval-every 100 "$@" $EXTRA 2>&1 | sed "s/^/$name: /" | tee -a "$OUT/run.log"
  echo "$name done at ${SECONDS} s"
}
variant A --lr 1e-4 --batch 128 --steps 1200 --cosine
variant B --lr 1e-4 --batch 128 --steps 1200 --cosine --l2-weight 10
variant C --lr 3e-5 --batch 128 --steps 1200 --cosine
ls -la "$OUT"
