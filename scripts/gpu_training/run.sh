#!/bin/bash
# One call on the GPU box (repo root as working directory, gpu/pack carried along):
# unpack the data, train, leave ckpt.pt + history.json + train.log in $OUT.
#   BUDGET_S=470 scripts/gpu_training/run.sh                                  # train_probed.py
#   SCRIPT=train_timed.py T_MAT=170 T_UNC=15 T_REF=30 scripts/gpu_training/run.sh
#   SCRIPT=train_timed.py PLAN=refiner:170,export:v5r,matting:170 scripts/gpu_training/run.sh
export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1  # numpy in 12+ data workers: one thread each
here=scripts/gpu_training
mkdir -p "$OUT"
mkdir -p /tmp/pkg/clickmatte && ln -sfn "$PWD/model" /tmp/pkg/clickmatte/model
export PYTHONPATH=/tmp/pkg
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, cv2, numpy, tqdm, PIL; print(torch.__version__, cv2.__version__, numpy.__version__, torch.cuda.is_available())"
python3 $here/unpack.py || exit 3
python3 $here/${SCRIPT:-train_probed.py} 2>&1 | tee "$OUT/train.log" | grep -v "it/s"
ls -la "$OUT"
