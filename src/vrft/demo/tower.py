"""Stage 1 of the demo base (`vrft.demo.base`): the vision tower pretrained ALONE.

By `BaseBuildSettings.vision_objective`: 'dense' (the default) trains the tower and its merger as a
tiny one-stage detector (every visual token predicts the class, box and coordinate digits of the shape
centred in its cell, on scenes of 1-3 of all 8 shapes, the novel ones only as outlines); 'classify' is
the earlier mean-pooled single-shape classifier. The coordinate digits are those of the integers the
answers write, in the architecture's own convention (`vrft.boxes.Frame`: resized pixels for Qwen2.5-VL,
0..1000 for Qwen3-VL). The head is thrown away after this stage.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from vrft.data.synthetic import ALL_CLASSES, NOVEL_CLASSES
from vrft.demo.settings import BaseBuildSettings

logger = logging.getLogger(__name__)


def vision_images(settings: BaseBuildSettings, n: int, seed: int):
    """(PIL images, class indices) for the tower: all 8 shapes, filled or outlined."""
    from vrft.demo.world import draw_single

    images, labels = [], []
    for i in range(n):
        c = i % len(ALL_CLASSES)
        img, _ = draw_single(i, seed, settings.image_size, ALL_CLASSES[c], "any")
        images.append(img)
        labels.append(c)
    return images, labels


# The looks of stage 1 and of the classification part of the mix: the NOVEL shapes only as outlines.
BASE_LOOKS = {c: ("outline" if c in NOVEL_CLASSES else "any") for c in ALL_CLASSES}


def draw_looks_scene(index: int, seed: int, size: int, looks: dict[str, str], max_objects: int):
    """A white scene of 1..`max_objects` shapes, classes from `looks` (class -> look, as `draw_single`);
    returns (PIL image, [(class index in ALL_CLASSES, [x1, y1, x2, y2]), ...])."""
    import numpy as np
    from PIL import Image, ImageDraw

    from vrft.data import synthetic as syn

    rng = np.random.default_rng([seed, index, 8])
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw, classes, objects = ImageDraw.Draw(img), list(looks), []
    colours = [c for c in syn.COLOURS if c != "white"]
    for _ in range(int(rng.integers(1, max_objects + 1))):
        shape = classes[int(rng.integers(len(classes)))]
        obj = float(rng.uniform(0.22, 0.5)) * size
        placed = syn._place(rng, shape, size, obj, [b for _, b in objects], 0.25)
        if placed is None:
            continue
        poly, box = placed
        look = looks[shape]
        if look == "any":
            look = "filled" if rng.random() < 0.5 else "outline"
        if look == "outline":
            fill, variant = syn.COLOURS["black"], "hollow"
        else:
            fill, variant = syn._jitter(rng, syn.COLOURS[colours[int(rng.integers(len(colours)))]]), "filled"
        syn._draw(draw, poly, fill, variant, obj)
        objects.append((ALL_CLASSES.index(shape), [float(v) for v in box]))
    return img, objects


def dense_targets(objects: list, size: int, grid: int):
    """Per visual token (row-major cells of a `grid` x `grid` map): the class of the shape whose box centre
    lies in the cell (len(ALL_CLASSES) = none; the larger shape wins a shared cell) and its box / size
    (the L1 regression target's scale, not an answer coordinate: those come from `coordinate_digits`)."""
    import torch

    cls = torch.full((grid * grid,), len(ALL_CLASSES), dtype=torch.long)
    box = torch.zeros(grid * grid, 4)
    area = torch.zeros(grid * grid)
    for c, (x1, y1, x2, y2) in objects:
        col = min(grid - 1, int((x1 + x2) / 2 / size * grid))
        row = min(grid - 1, int((y1 + y2) / 2 / size * grid))
        k, a = row * grid + col, (x2 - x1) * (y2 - y1)
        if a > area[k]:
            cls[k], area[k] = c, a
            box[k] = torch.tensor([x1, y1, x2, y2]) / size
    return cls, box


def pretrain_vision(model: Any, processor: Any, settings: BaseBuildSettings) -> dict[str, Any]:
    """Stage 1, by `settings.vision_objective`; returns its held-out metrics."""
    if settings.vision_objective == "dense":
        return pretrain_vision_dense(model, processor, settings)
    return pretrain_vision_classify(model, processor, settings)


DIGIT_OUT = 4 * 3 * 10  # per box coordinate: hundreds, tens and units digit


def answer_frame(config: Any, image_size: int):
    """The `vrft.boxes.Frame` in which a model of `config` (a config, a config.json dict or a model_type)
    writes the boxes of a square `image_size` image at the demo's fixed pixel budget: resized pixels
    for Qwen2.5-VL (= pixels at 112), 0..1000 for Qwen3-VL."""
    from vrft.boxes import Frame
    from vrft.models.load import convention_for

    px = image_size**2
    return Frame.for_image(image_size, image_size, convention_for(config), min_pixels=px, max_pixels=px)


def coordinate_digits(boxes_px, frame):
    """(N, 4) box coordinates in original pixels -> (N, 12) digit classes (hundreds, tens, units per
    coordinate) of the integers the answers write in `frame` (`Frame.encode`; 1000 is capped at 999:
    three digits per coordinate)."""
    import torch

    encoded = [frame.encode(b) for b in boxes_px.tolist()]
    v = torch.tensor(encoded, dtype=torch.long).reshape(-1, 4).clamp(0, 999)
    return torch.stack([v // 100, v // 10 % 10, v % 10], dim=-1).reshape(v.shape[0], 12)


class _Tower:
    """What both stage-1 objectives share: images encoded once at the processor's fixed grid, a linear
    head on the tower's merged tokens, and the AdamW + one-cycle training loop over random batches."""

    def __init__(self, model: Any, processor: Any, settings: BaseBuildSettings, head_out: int) -> None:
        import torch

        self.model, self.ip, self.settings = model, processor.image_processor, settings
        self.inner = model.model
        self.head = torch.nn.Linear(model.config.text_config.hidden_size, head_out)
        self.params = [*self.inner.visual.parameters(), *self.head.parameters()]
        self.grid = None

    def encode(self, images: list) -> Any:
        """(n, patches, patch dim) pixel values; every image has the same grid (fixed pixel budget)."""
        batch = self.ip(images=images, return_tensors="pt")
        self.grid = batch["image_grid_thw"][:1]
        return batch["pixel_values"].view(len(images), int(self.grid[0].prod()), -1)

    @property
    def side(self) -> int:
        """Visual tokens per side (spatial merge 2)."""
        return int(self.grid[0][1]) // 2

    def tokens(self, pixels: Any) -> list:
        """The merged visual tokens: one (tokens, hidden) tensor per image."""
        n = pixels.shape[0]
        feats = self.inner.get_image_features(pixels.reshape(n * pixels.shape[1], -1), self.grid.repeat(n, 1))
        return list(feats.pooler_output)

    def train(self, n_images: int, loss_of, log_names: tuple[str, ...]) -> list[tuple[float, ...]]:
        """`vision_steps` AdamW steps on random batches (`loss_of(indices)` -> (loss, *logged values));
        returns the logged values per step."""
        import torch

        st = self.settings
        opt = torch.optim.AdamW(self.params, lr=st.vision_lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=st.vision_lr, total_steps=st.vision_steps, pct_start=0.05
        )
        gen = torch.Generator().manual_seed(st.seed)
        logs: list[tuple[float, ...]] = []
        self.model.train()
        for step in range(st.vision_steps):
            idx = torch.randint(n_images, (st.vision_batch,), generator=gen)
            loss, *logged = loss_of(idx)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            opt.step()
            sched.step()
            logs.append(tuple(v.item() for v in logged))
            if (step + 1) % 100 == 0:
                recent = logs[-100:]
                means = ", ".join(f"{name} {sum(r[i] for r in recent) / len(recent):.4f}"
                                  for i, name in enumerate(log_names))  # fmt: skip
                logger.info("vision pretraining step %d/%d: %s", step + 1, st.vision_steps, means)
        self.model.eval()
        return logs

    def predict(self, pixels: Any, fn) -> list:
        """`fn(tokens of a batch)` over `pixels` in batches of 64, without gradients."""
        import torch

        with torch.no_grad():
            return [fn(self.tokens(pixels[i : i + 64])) for i in range(0, len(pixels), 64)]


def pretrain_vision_dense(model: Any, processor: Any, settings: BaseBuildSettings) -> dict[str, Any]:
    """Train the vision tower (and its merger) as a tiny one-stage detector: every visual token predicts
    the class of the shape centred in its cell (or none), that shape's box (L1) and the digits of its
    coordinates as the answers write them (cross-entropy), on
    white scenes of 1-`det_max_objects` shapes of all 8 classes, the novel ones only as outlines."""
    import torch

    t0 = time.perf_counter()
    size = settings.image_size

    def scenes(n, seed):
        drawn = [draw_looks_scene(i, seed, size, BASE_LOOKS, settings.det_max_objects) for i in range(n)]
        return [d[0] for d in drawn], [d[1] for d in drawn]

    tr_img, tr_obj = scenes(settings.vision_images, settings.seed * 100 + 13)
    va_img, va_obj = scenes(max(settings.eval_images * 4, 64), settings.seed * 100 + 14)
    none = len(ALL_CLASSES)
    tower = _Tower(model, processor, settings, none + 1 + 4 + DIGIT_OUT)
    frame = answer_frame(model.config, size)
    px, vpx = tower.encode(tr_img), tower.encode(va_img)

    def targets(objs):
        t = [dense_targets(o, size, tower.side) for o in objs]
        return torch.stack([a for a, _ in t]), torch.stack([b for _, b in t])

    cls_t, box_t = targets(tr_obj)
    vcls_t, vbox_t = targets(va_obj)
    weight = torch.ones(none + 1)
    weight[none] = 0.25  # most cells are empty

    def split(tokens):  # head on every token -> class logits, boxes, digit logits
        out = tower.head(torch.stack(tokens))  # (n, tokens, classes + 1 + 4 + digits)
        return out[..., : none + 1], out[..., none + 1 : none + 5].sigmoid(), out[..., none + 5 :]

    def loss_of(idx):
        logits, boxes, digits = split(tower.tokens(px[idx]))
        c, b = cls_t[idx], box_t[idx]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, none + 1), c.reshape(-1), weight=weight)
        pos = c != none
        if not pos.any():
            return ce, ce, boxes.sum() * 0
        l1 = (boxes[pos] - b[pos]).abs().mean()
        target = coordinate_digits(b[pos] * size, frame)  # (P, 12)
        dce = torch.nn.functional.cross_entropy(digits[pos].reshape(-1, 10), target.reshape(-1))
        return ce + 5 * l1 + dce, ce, l1

    tower.train(len(tr_img), loss_of, ("cell CE", "box L1"))
    logits, boxes, digits = (torch.cat(t) for t in zip(*tower.predict(vpx, split)))
    pos = vcls_t != none
    acc = float((logits.argmax(-1)[pos] == vcls_t[pos]).float().mean()) * 100
    l1 = float((boxes[pos] - vbox_t[pos]).abs().mean()) * size
    dacc = float(
        (digits[pos].reshape(-1, 12, 10).argmax(-1) == coordinate_digits(vbox_t[pos] * size, frame))
        .float()
        .mean()
    )
    return {"vision_val_cell_accuracy": round(acc, 1), "vision_val_box_l1_px": round(l1, 2),
            "vision_val_digit_accuracy": round(dacc * 100, 1),
            "vision_val_images": len(va_img), "vision_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def pretrain_vision_classify(model: Any, processor: Any, settings: BaseBuildSettings) -> dict[str, Any]:
    """Train the vision tower (and its patch merger) as an 8-way shape classifier on mean-pooled visual
    tokens; returns metrics."""
    import torch

    t0 = time.perf_counter()
    tr_img, tr_lab = vision_images(settings, settings.vision_images, settings.seed * 100 + 11)
    va_img, va_lab = vision_images(settings, max(settings.eval_images * 4, 64), settings.seed * 100 + 12)
    tower = _Tower(model, processor, settings, len(ALL_CLASSES))
    px, vpx = tower.encode(tr_img), tower.encode(va_img)
    labels, vlabels = torch.tensor(tr_lab), torch.tensor(va_lab)

    def pooled(tokens):  # head on the mean token
        return tower.head(torch.stack([t.mean(0) for t in tokens]))

    def loss_of(idx):
        loss = torch.nn.functional.cross_entropy(pooled(tower.tokens(px[idx])), labels[idx])
        return loss, loss

    losses = [v for (v,) in tower.train(len(tr_img), loss_of, ("loss",))]
    pred = torch.cat([p.argmax(-1) for p in tower.predict(vpx, pooled)])
    acc = float((pred == vlabels).float().mean()) * 100
    return {"vision_val_accuracy": round(acc, 1), "vision_val_images": len(va_img),
            "vision_final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 3),
            "vision_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
