"""Pack the training data for the GPU box (under 64 MiB): JPEG q95 images and foregrounds, PNG alphas -> gpu/pack."""
import os
import shutil
from pathlib import Path
import numpy as np
from PIL import Image

from clickmatte.model.data import foreground_cache_path, read_alpha, read_rgb
from clickmatte.model.splits import train_names, dev_names

src = Path("../shared/data/comp1k_crops"); out = Path("gpu/pack")
shutil.rmtree(out, ignore_errors=True)
for d in ("img", "fg", "alpha", "bg"):
    (out / d).mkdir(parents=True)
names = sorted(os.listdir(src / "alpha"))
tr = train_names(names)
dev = [n for n in dev_names()][:24]
for n in tr + dev:
    img = read_rgb(src / "image" / n)
    a = read_alpha(src / "alpha" / n)
    Image.fromarray(img).save(out / "img" / n.replace(".png", ".jpg"), quality=95)
    shutil.copy(src / "alpha" / n, out / "alpha" / n)
    if n in tr:
        fg = np.load(foreground_cache_path("runs/cache", img, a))
        Image.fromarray(fg).save(out / "fg" / n.replace(".png", ".jpg"), quality=95)
for p in sorted(Path("../shared/data/backgrounds").glob("*.png")):
    Image.open(p).convert("RGB").save(out / "bg" / (p.stem + ".jpg"), quality=92)
print(len(tr), "train", len(dev), "dev")
