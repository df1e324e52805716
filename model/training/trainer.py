"""The training loop of ``clickmatte-train`` (:class:`Trainer`): the matting, uncertainty and refiner stages,
the RITM-style click iterations, validation on the dev split, resumable state and the checkpoint export."""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation.click_simulator import deepest_click, next_click
from ..inference.clicks import as_click, encode_clicks
from ..network.registry import ClickMatteModel, build_model, save_checkpoint
from .batches import BatchSource, _identity, _to, _worker_init
from .click_sampling import corrective_clicks
from .data import CompositeSampler, CropBank, load_backgrounds
from .losses import laplace_nll, mask_loss, matting_losses, refinement_loss
from .splits import dev_names, train_names
from .train_config import STAGES, TrainConfig


def _lr_at(step: int, total: int, base: float, warmup: int = 30) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


class Trainer:
    """The three stages of ``clickmatte-train`` for one :class:`~.train_config.TrainConfig`: ``run()`` trains
    (resuming from ``out/state.pt``), ``export(path)`` writes the checkpoint the Predictor loads."""

    def __init__(self, cfg: TrainConfig) -> None:
        from ..inference.predictor import resolve_device

        self.cfg = cfg
        if not 0.0 < cfg.coarse_scale_min <= cfg.coarse_scale_max <= 1.0:
            raise ValueError(f"need 0 < coarse_scale_min <= coarse_scale_max <= 1, got "
                             f"{cfg.coarse_scale_min}, {cfg.coarse_scale_max}")
        for share in ("p_coarse_native", "p_iterative_refiner"):
            if not 0.0 <= getattr(cfg, share) <= 1.0:
                raise ValueError(f"{share} must be in [0, 1], got {getattr(cfg, share)}")
        if not 0.0 <= cfg.p_real <= 1.0:
            raise ValueError(f"p_real must be in [0, 1], got {cfg.p_real}")
        if cfg.p_real > 0 and not cfg.real_objects:
            raise ValueError("p_real > 0 needs real_objects (a folder with image/ and mask/)")
        if not 0.0 <= cfg.p_fixed_clicks <= 1.0:
            raise ValueError(f"p_fixed_clicks must be in [0, 1], got {cfg.p_fixed_clicks}")
        if cfg.iterative_rounds < 1:
            raise ValueError(f"iterative_rounds must be >= 1, got {cfg.iterative_rounds}")
        self.device = resolve_device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        if cfg.workers < 0:
            raise ValueError(f"workers must be >= 0, got {cfg.workers}")
        if cfg.workers > 0:
            # OpenCV's thread pool does not survive fork(): a worker forked after the parent used it
            # hangs in its first parallel cv2 call. The parent draws its CPU work through self.pool.
            cv2.setNumThreads(1)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        # RITM-style clicks are found per sample on the CPU (distance transforms release the GIL)
        self.pool = ThreadPoolExecutor(max(1, min(8, cfg.workers))) if cfg.workers > 0 else None
        torch.manual_seed(cfg.seed)
        names = sorted(os.listdir(Path(cfg.data) / "alpha"))
        tr = train_names(names)
        if cfg.limit_train:
            tr = tr[: cfg.limit_train]
        if not tr:
            raise ValueError(f"no training crops found under {cfg.data}")
        self.bank = CropBank(cfg.data, tr, cache_dir=cfg.cache_dir)
        bgs = load_backgrounds(cfg.backgrounds) if Path(cfg.backgrounds).is_dir() else []
        self.sampler = CompositeSampler(self.bank, bgs, size=cfg.size, p_soft_clicks=cfg.p_soft_clicks,
                                        p_synth_obj=cfg.p_synth_obj, p_see_through=cfg.p_see_through,
                                        p_camouflage=cfg.p_camouflage, p_zoom=cfg.p_zoom,
                                        p_parts=cfg.p_parts)
        self.matting_sampler = self.sampler
        if cfg.p_real > 0:
            from .real_objects import MixedSampler, RealObjectBank, RealObjectSampler

            real = RealObjectBank(cfg.real_objects, cfg.size, limit=cfg.real_limit)
            self.sampler = MixedSampler(self.sampler, RealObjectSampler(real, cfg.size, band=cfg.real_band),
                                        cfg.p_real)
        dev = [n for n in dev_names() if (Path(cfg.data) / "alpha" / n).is_file()][: cfg.val_images]
        self.val_bank = CropBank(cfg.data, dev, foregrounds=False) if dev else None
        self.model: ClickMatteModel = build_model(cfg.model, pretrained=cfg.pretrained).to(self.device)
        self.stage = STAGES[0]
        self.step = 0
        self.history: list[dict] = []
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.opt = self._make_optimizer()
        if cfg.init and not self._state_path().is_file():
            from ..network.registry import load_checkpoint

            self.model.load_state_dict(load_checkpoint(cfg.init).state_dict())
            self.model.to(self.device)
        self._resume()

    # -- optimisers per stage --------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        net, cfg = self.model.net, self.cfg
        if self.stage == "matting":
            groups = [
                {"params": list(net.encoder.parameters()), "lr_scale": cfg.lr_encoder_scale},
                {"params": list(net.alpha_decoder.parameters()), "lr_scale": 1.0},
            ]
        elif self.stage == "uncertainty":
            groups = [{"params": list(net.sigma_decoder.parameters()), "lr_scale": 1.0}]
        else:
            groups = [{"params": list(self.model.refiner.parameters()), "lr_scale": 1.0}]
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _stage_steps(self, stage: str) -> int:
        return {"matting": self.cfg.steps_matting, "uncertainty": self.cfg.steps_uncertainty,
                "refiner": self.cfg.steps_refiner}[stage]

    def begin_stage(self, stage: str) -> None:
        """Start ``stage`` at step 0: its optimiser, its trainable parts."""
        self.stage, self.step = stage, 0
        self.opt = self._make_optimizer()
        self._set_train_mode()

    def _set_train_mode(self) -> None:
        m = self.model
        m.eval()
        m.requires_grad_(False)
        if self.stage == "matting":
            m.net.encoder.train().requires_grad_(True)
            m.net.alpha_decoder.train().requires_grad_(True)
        elif self.stage == "uncertainty":
            m.net.sigma_decoder.train().requires_grad_(True)
        else:
            m.refiner.train().requires_grad_(True)

    # -- persistence -------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return self.out / "state.pt"

    def save_state(self) -> None:
        payload = {
            "model": self.model.state_dict(), "opt": self.opt.state_dict(), "stage": self.stage,
            "step": self.step, "config": asdict(self.cfg), "history": json.dumps(self.history),
        }
        tmp = self._state_path().with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self._state_path())

    def _resume(self) -> None:
        p = self._state_path()
        if not p.is_file():
            return
        st = torch.load(p, map_location=self.device, weights_only=True)
        self.model.load_state_dict(st["model"])
        self.stage, self.step = st["stage"], int(st["step"])
        self.history = json.loads(st.get("history", "[]"))
        self.opt = self._make_optimizer()
        try:
            self.opt.load_state_dict(st["opt"])
        except ValueError:
            pass
        print(f"resumed {p}: stage {self.stage}, step {self.step}", file=sys.stderr)

    # -- steps -------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prepare(self, item) -> dict[str, torch.Tensor]:
        """A :class:`BatchSource` item on the device, with RITM-style clicks where it asks for them."""
        arrays, samples, iterate, seed = item
        b = _to(arrays, self.device)
        if iterate:
            b = self._iterate_clicks(b, samples, np.random.default_rng(seed))
        return b

    def _sampler_for(self, stage: str):
        """Real-photo samples train the matting net and the uncertainty decoder; the refiner learns from
        matting ground truth only (a mask's edge says nothing of a 64 px patch's alpha)."""
        return self.matting_sampler if stage == "refiner" else self.sampler

    def _batch(self, step: int) -> dict[str, torch.Tensor]:
        return self._prepare(BatchSource(self._sampler_for(self.stage), self.cfg, self.stage)[step])

    @torch.no_grad()
    def _iterate_clicks(self, b: dict[str, torch.Tensor], samples: list, rng: np.random.Generator
                        ) -> dict[str, torch.Tensor]:
        """RITM-style: run the net, add a corrective click at each sample's largest error, feed its alpha back.

        With ``p_fixed_clicks`` > 0 that share of the added clicks ignores the error: a fg or bg click (even odds)
        at the point deepest inside the true region away from earlier clicks (:func:`deepest_click`, the fixed
        evaluation protocol's click), so that a click on an already right part must leave the matte right."""
        s, n = self.cfg.size, len(samples)
        for _ in range(int(rng.integers(1, self.cfg.iterative_rounds + 1))):
            with self._autocast():
                pred, _ = self.model.net(b["rgb"], b["clicks"], b["prev"])
            pred = pred.float()
            pred_np = pred[:, 0].cpu().numpy()
            soft = rng.random(n) < self.cfg.p_soft_clicks
            seeds = rng.integers(1 << 62, size=n)
            # drawn only when used: with p_fixed_clicks = 0 the batches are those of earlier recipes
            blind = rng.random(n) < self.cfg.p_fixed_clicks if self.cfg.p_fixed_clicks > 0 else np.zeros(n, bool)

            def one(i: int) -> np.ndarray:
                smp = samples[i]
                if blind[i]:
                    r = np.random.default_rng(seeds[i])
                    known = None if smp.weight is None else smp.weight > 0
                    c = deepest_click(smp.alpha, "fg" if r.random() < 0.5 else "bg", smp.clicks, known)
                    extra = [] if c is None else [as_click(c)]
                elif smp.weight is not None:  # a mask: clicks only where it is trusted
                    target = np.where(smp.weight > 0, smp.alpha, 0.5).astype(np.float32)
                    extra = corrective_clicks(np.random.default_rng(seeds[i]), pred_np[i], target, 1)
                elif soft[i]:  # the evaluation simulator's click (alpha binarised at 0.5)
                    c = next_click(smp.alpha, pred_np[i], smp.clicks)
                    extra = [] if c is None else [as_click(c)]
                else:
                    extra = corrective_clicks(np.random.default_rng(seeds[i]), pred_np[i], smp.alpha, 1)
                smp.clicks = smp.clicks + extra
                return encode_clicks(smp.clicks, s, s, self.cfg.radius)

            maps = list(self.pool.map(one, range(n))) if self.pool else [one(i) for i in range(n)]
            b["clicks"] = torch.from_numpy(np.stack(maps)).to(self.device)
            b["prev"] = pred.detach()
        return b

    def train_step(self, step: int, total: int, item=None) -> dict[str, float]:
        """One optimiser step on ``item`` (a :class:`BatchSource` item; drawn here when None)."""
        b = self._batch(step) if item is None else self._prepare(item)
        lr = _lr_at(step, total, self.cfg.lr)
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        net = self.model.net
        if self.stage == "matting":
            with self._autocast():
                alpha, _ = net(b["rgb"], b["clicks"], b["prev"])
            alpha = alpha.float()
            is_mask = b["is_mask"] > 0.5
            mat = ~is_mask
            loss = alpha.sum() * 0.0
            logs = {}
            if mat.any():  # matting ground truth: regression + gradient losses
                terms = matting_losses(alpha[mat], b["alpha"][mat], w_gradient=self.cfg.w_gradient)
                loss = loss + terms["total"]
                logs.update(reg=terms["regression"].item(), grad=terms["gradient"].item())
            if is_mask.any():  # mask targets: BCE + L1 away from the edge band
                ml = mask_loss(alpha[is_mask], b["alpha"][is_mask], b["weight"][is_mask])
                loss = loss + self.cfg.w_mask * ml
                logs["mask"] = ml.item()
            # plain L1, weighted up inside the click disks: the matte must follow the user's clicks
            w = (1.0 + self.cfg.w_click * b["clicks"].amax(dim=1, keepdim=True)) * b["weight"]
            l1 = ((alpha - b["alpha"]).abs() * w).sum() / w.sum().clamp_min(1.0)
            loss = loss + self.cfg.w_l1 * l1
            logs["l1"] = l1.item()
        elif self.stage == "uncertainty":
            rgb, clicks, prev, gt, weight = self._rescale(b, step)
            with self._autocast():
                alpha, sigma = net(rgb, clicks, prev)
            alpha, sigma = alpha.float(), sigma.float()
            # a mask's edge band is left out: the decoder must not learn that mask edges are sure
            loss = laplace_nll(sigma, alpha, gt, weight)
            logs = {"nll": loss.item(), "sigma": sigma.mean().item()}
        else:
            loss, logs = self._refiner_loss(b, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], 5.0)
        self.opt.step()
        logs["loss"] = loss.item()
        logs["lr"] = lr
        return logs

    def _rescale(self, b: dict[str, torch.Tensor], step: int):
        """The batch at a random working scale (as the coarse net sees a bigger image):
        ``(rgb, clicks, prev, alpha, weight)``; ``weight`` is 1 only where the full-size weight is 1 over
        the whole pooled area."""
        rng = np.random.default_rng([self.cfg.seed, 99, step])
        s = float(rng.uniform(self.cfg.coarse_scale_min, self.cfg.coarse_scale_max))
        if self.cfg.p_coarse_native > 0 and rng.random() < self.cfg.p_coarse_native:
            s = 1.0
        size = max(64, int(round(self.cfg.size * s / 32)) * 32)
        if size == self.cfg.size:
            return b["rgb"], b["clicks"], b["prev"], b["alpha"], b["weight"]
        rs = lambda t: F.interpolate(t, size=(size, size), mode="area")  # noqa: E731
        clicks = (F.adaptive_max_pool2d(b["clicks"], size) > 0).float()
        weight = (rs(b["weight"]) > 0.999).float()
        return rs(b["rgb"]), clicks, rs(b["prev"]), rs(b["alpha"]), weight

    def _refiner_loss(self, b: dict[str, torch.Tensor], step: int):
        cfg, ref = self.cfg, self.model.refiner
        k, m = ref.config.patch_size, ref.config.margin
        with torch.no_grad():
            rgb, clicks, prev, _, _ = self._rescale(b, step)
            with self._autocast():
                alpha_s, sigma_s = self.model.net(rgb, clicks, prev)
            alpha_s, sigma_s = alpha_s.float(), sigma_s.float()
            up = lambda t: F.interpolate(t, size=b["rgb"].shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
            alpha, sigma = up(alpha_s).clamp(0, 1), up(sigma_s).clamp_min(1e-3)
            err = (alpha - b["alpha"]).abs()
            # hardest windows: error summed over k x k, picked greedily without overlap
            score = F.avg_pool2d(err, k, stride=k // 4)
            # ... and, as at inference, the most uncertain windows (so that confident-looking flat
            # regions the uncertainty decoder flags are in the refiner's training distribution)
            score_sigma = F.avg_pool2d(sigma, k, stride=k // 4)
        xs, gts = [], []
        pad = lambda t: F.pad(t, (m, m, m, m), mode="replicate")  # noqa: E731
        stack = pad(torch.cat([b["rgb"], alpha, sigma], 1))
        gt_pad = pad(b["alpha"])
        for i in range(b["rgb"].shape[0]):
            sc = score[i, 0].clone()
            ss = score_sigma[i, 0].clone()
            for j in range(cfg.patches_per_image):
                idx = int(torch.argmax(sc if j % 2 == 0 else ss))
                gy, gx = divmod(idx, sc.shape[1])
                y, x = gy * (k // 4), gx * (k // 4)
                xs.append(stack[i, :, y : y + k + 2 * m, x : x + k + 2 * m])
                gts.append(gt_pad[i, :, y + m : y + m + k, x + m : x + m + k])
                sc[max(0, gy - 3) : gy + 4, max(0, gx - 3) : gx + 4] = -1
                ss[max(0, gy - 3) : gy + 4, max(0, gx - 3) : gx + 4] = -1
        p = torch.stack(xs)
        gt = torch.stack(gts)
        with self._autocast():
            out = ref(p[:, :3], p[:, 3:4], p[:, 4:5])
        out = out.float()
        loss = refinement_loss(out, gt, lam=cfg.refine_lambda)
        coarse = p[:, 3:4, m : m + k, m : m + k]
        return loss, {"ref_l1": (out - gt).abs().mean().item(), "coarse_l1": (coarse - gt).abs().mean().item()}

    # -- validation --------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean SAD on dev crops with 1 and 5 clicks from the evaluator's error-driven simulator (quick check)."""
        if self.val_bank is None:
            return {}
        self.model.eval()
        sads = {1: [], 5: []}
        for img, gt in zip(self.val_bank.images, self.val_bank.alphas):
            h, w = gt.shape
            rgb = torch.from_numpy(img).permute(2, 0, 1)[None].float().to(self.device) / 255
            clicks: list = []
            prev = None
            for n in range(1, 6):
                c = next_click(gt, prev, clicks)
                if c is None:
                    break
                clicks.append(c)
                cm = torch.from_numpy(encode_clicks(clicks, h, w, self.cfg.radius))[None].to(self.device)
                pv = None if prev is None else torch.from_numpy(prev)[None, None].to(self.device)
                a, _ = self.model.net(rgb, cm, pv)
                prev = a[0, 0].cpu().numpy()
                if n in sads:
                    sads[n].append(float(np.abs(prev - gt).sum() / 1000))
        self._set_train_mode()
        return {f"val_sad@{n}": float(np.mean(v)) for n, v in sads.items() if v}

    # -- loop --------------------------------------------------------------------------------
    def run(self) -> None:
        from tqdm import tqdm

        start_stage = STAGES.index(self.stage)
        for si in range(start_stage, len(STAGES)):
            stage = STAGES[si]
            if stage != self.stage:
                self.begin_stage(stage)
            else:  # resumed mid-stage
                self._set_train_mode()
            total = self._stage_steps(stage)
            bar = tqdm(range(self.step, total), initial=self.step, total=total, desc=stage,
                       dynamic_ncols=True, mininterval=5.0)
            items = self.stage_items(stage, self.step, total)
            for step in bar:
                logs = self.train_step(step, total, next(items))
                self.step = step + 1
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
                if self.step % 10 == 0:
                    self.history.append({"stage": stage, "step": self.step, **logs})
                if self.step % self.cfg.ckpt_every == 0 or self.step == total:
                    self.save_state()
                if stage == "matting" and (self.step % self.cfg.val_every == 0 or self.step == total):
                    v = self.validate()
                    self.history.append({"stage": stage, "step": self.step, **v})
                    tqdm.write(f"step {self.step}: {v}")
                    if self.cfg.export:
                        self.export(self.cfg.export, partial=True)
            bar.close()
            self.step = total
            self.save_state()
        if self.cfg.export:
            self.export(self.cfg.export)

    def stage_items(self, stage: str, start: int, total: int) -> Iterator[Any]:
        """The stage's batches for steps ``start``..``total - 1`` (items for :meth:`train_step`): drawn in DataLoader
        workers when ``workers`` > 0."""
        src = BatchSource(self._sampler_for(stage), self.cfg, stage)
        if self.cfg.workers == 0:
            return (src[i] for i in range(start, total))
        loader = torch.utils.data.DataLoader(
            src, batch_size=None, sampler=range(start, total), num_workers=self.cfg.workers,
            collate_fn=_identity, prefetch_factor=4,
            worker_init_fn=_worker_init)
        return iter(loader)

    def export(self, path: str, partial: bool = False) -> None:
        vals = [h for h in self.history if any(k.startswith("val_") for k in h)]
        meta = {
            "trained_with": "clickmatte-train",
            "stage": self.stage, "step": self.step, "complete": not partial,
            "config": {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in asdict(self.cfg).items()},
            "last_validation": json.dumps(vals[-1] if vals else {}),
            "data": "comp1k_crops (train split, dev split held out) re-composited on backgrounds/ and generated backgrounds"
                    + (f"; whole real photos with object masks from {Path(self.cfg.real_objects).name} "
                       f"(p_real {self.cfg.p_real})" if self.cfg.p_real > 0 else ""),
            "device": str(self.device), "torch": str(torch.__version__), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        save_checkpoint(self.model, path, meta=meta, half=True)
