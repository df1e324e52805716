"""On the GPU box: rebuild comp1k_crops-style folders and the foreground cache from gpu/pack."""
import hashlib
from pathlib import Path
import numpy as np
from PIL import Image

from clickmatte.model.data import read_rgb, read_alpha

pack, data, cache = Path("gpu/pack"), Path("/tmp/data/comp1k_crops"), Path("/tmp/cache")
for d in (data / "image", data / "alpha", cache):
    d.mkdir(parents=True, exist_ok=True)
n_fg = 0
for ap in sorted((pack / "alpha").glob("*.png")):
    n = ap.name
    Image.open(pack / "img" / n.replace(".png", ".jpg")).convert("RGB").save(data / "image" / n)
    (data / "alpha" / n).write_bytes(ap.read_bytes())
    fgp = pack / "fg" / n.replace(".png", ".jpg")
    if fgp.is_file():
        img, a = read_rgb(data / "image" / n), read_alpha(data / "alpha" / n)
        key = hashlib.sha1(img.tobytes() + a.tobytes()).hexdigest()[:16]
        np.save(cache / f"fg_{key}.npy", np.asarray(Image.open(fgp).convert("RGB")))
        n_fg += 1
print("unpacked", len(list((data / "alpha").glob("*.png"))), "crops,", n_fg, "foregrounds", flush=True)
