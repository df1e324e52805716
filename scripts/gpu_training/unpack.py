"""On the GPU box: rebuild comp1k_crops-style folders and the foreground cache from gpu/pack."""
from pathlib import Path
import numpy as np
from PIL import Image

from clickmatte.model.data import foreground_cache_path, read_alpha, read_rgb

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
        np.save(foreground_cache_path(cache, img, a), np.asarray(Image.open(fgp).convert("RGB")))
        n_fg += 1
print("unpacked", len(list((data / "alpha").glob("*.png"))), "crops,", n_fg, "foregrounds", flush=True)
