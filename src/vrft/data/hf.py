"""Records + task + coordinate frame -> `datasets.Dataset` for TRL's GRPOTrainer / SFTTrainer.

What TRL 1.16 expects (read from trl/trainer/grpo_trainer.py and sft_trainer.py):
- GRPOTrainer (`_generate_and_score_completions`): a conversational ``prompt`` column; images from
  an ``images`` column (list per example) or an ``image`` column (one image per example), which it
  injects into the ``{"type": "image"}`` placeholders of the prompt (`prepare_multimodal_messages`
  fills only placeholders without an image). Every other column is passed to the reward functions
  as a keyword argument holding one value per completion. It needs ``remove_unused_columns=False``
  (its signature columns are only prompt / image / images).
- SFTTrainer: a dataset whose first example has ``image``/``images`` is a vision dataset; it skips
  tokenisation and collates on the fly with `DataCollatorForVisionLanguageModeling`, which takes
  ``prompt`` + ``completion`` (conversational: loss on the completion only) or ``messages``.

Images are loaded LAZILY: the Arrow table stores the image path and `Dataset.with_transform`
opens the file (converted to RGB) when a row is read, so a dataset of 100k records costs no memory.

Several images and video (`vrft.data.visual_inputs`): when any record holds ``images`` or a ``video``,
the table has a ``visuals`` column instead of ``image`` (a JSON description: the image paths, or the
video's path and sampled timestamps) and the transform turns it into an ``images`` list of RGB PIL
images, one per ``{"type": "image"}`` placeholder of the prompt, in order (TRL fills them in order).
A video becomes its sampled frames (video-as-frames, each after its timestamp in the text: TRL 1.16
cannot carry a video input; see `vrft.data.visual_inputs`). A one-image record among them shows a
list of one image. A record with more images than `MediaBudget.max_images` is refused (DataError).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from vrft.data.records import Record
from vrft.data.visual_inputs import MediaBudget, is_single_image, load_visuals, user_content, visual_spec
from vrft.errors import DataError

logger = logging.getLogger(__name__)

FrameFn = Callable[[Record], Any]


def load_rgb(path: str) -> Image.Image:
    """Open an image file fully as an RGB PIL image (the file handle is closed); DataError naming the
    file when it is missing, unreadable or a decompression bomb (`vrft.inputs.open_image`)."""
    from vrft.inputs import open_image

    return open_image(path)


def _lazy_images(batch: dict[str, list]) -> dict[str, list]:
    """`with_transform` hook: replace the ``image`` paths of a batch by RGB PIL images, and the
    ``visuals`` descriptions by ``images`` lists (`vrft.data.visual_inputs.load_visuals`)."""
    if "image" in batch:
        batch["image"] = [load_rgb(p) if isinstance(p, str) else p for p in batch["image"]]
    if "visuals" in batch:  # several images or a video per row -> an ``images`` list per row
        batch["images"] = [load_visuals(spec) for spec in batch.pop("visuals")]
    return batch


def _prompt_text(task: Any, record: Record, frame: Any) -> str:
    """``task.prompt(record)``, or ``task.prompt(record, frame)`` when the task takes the frame."""
    try:
        params = inspect.signature(task.prompt).parameters
    except (TypeError, ValueError):
        params = {}
    return task.prompt(record, frame) if len(params) >= 2 else task.prompt(record)


def user_turn(text: str, spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The conversational prompt: one user turn with an image placeholder then the text; with a
    `vrft.data.visual_inputs.visual_spec`, one placeholder per image or video frame after its caption
    (`vrft.data.visual_inputs.user_content`)."""
    return [{"role": "user", "content": user_content(text, spec)}]


def _image_ids(records: Sequence[Record]) -> list[Any]:
    ids = [r.image_id for r in records]
    kinds = {type(i) for i in ids if i is not None}
    if len(kinds) > 1:  # Arrow columns need one type
        return [None if i is None else str(i) for i in ids]
    return ids


def _unresolved(rec: Record) -> bool:
    if rec.images is not None:
        return rec.image_paths is None
    if rec.video is not None:
        return rec.video_path is None
    return rec.image_path is None


def _rows(
    records: Sequence[Record], task: Any, frame_fn: FrameFn, with_answer: bool, media: MediaBudget | None
) -> list[dict[str, Any]]:
    import json

    if not records:
        raise DataError("no records to build a training dataset from (check data.train and data.task)")
    missing = [r.source or r.id for r in records if _unresolved(r)]
    if missing:
        raise DataError(f"records without a resolved image path (load them with load_records): {missing[:5]}")
    media = media or MediaBudget()
    several = not all(is_single_image(r) for r in records)  # then every row gets an ``images`` list
    image_ids = _image_ids(records)
    rows = []
    for rec, iid in zip(records, image_ids):
        frame = frame_fn(rec)
        text = _prompt_text(task, rec, frame)
        row: dict[str, Any] = {}
        if several:
            spec = visual_spec(rec, media)
            row["prompt"] = user_turn(text, spec)
            row["visuals"] = json.dumps(spec)
        else:
            row["prompt"] = user_turn(text)
            row["image"] = str(rec.image_path)
        row.update(record_id=rec.id, image_id=iid)
        if with_answer:
            row["completion"] = [{"role": "assistant", "content": task.answer_text(rec, frame)}]
        else:
            row.update(task.reward_columns(rec, frame))
        rows.append(row)
    return rows


def _to_dataset(rows: list[dict[str, Any]]):
    import datasets

    keys: list[str] = []
    for row in rows:  # union of keys, first-seen order (a column missing in a row becomes None)
        keys += [k for k in row if k not in keys]
    columns = {k: [row.get(k) for row in rows] for k in keys}
    ds = datasets.Dataset.from_dict(columns)
    return ds.with_transform(_lazy_images)


def build_grpo_dataset(
    records: Sequence[Record], task: Any, frame_fn: FrameFn, media: MediaBudget | None = None
):
    """Dataset for `trl.GRPOTrainer`.

    Columns: ``prompt`` (conversational, ``[{"role": "user", "content": [{"type": "image"},
    {"type": "text", "text": ...}]}]``), ``image`` (RGB PIL image, opened on access), ``record_id``,
    ``image_id``, plus ``task.reward_columns(record, frame)`` (e.g. ``gt_boxes`` in the model's
    convention, ``gt_label``, ``gt_aliases``), which TRL hands to the reward functions.

    Args:
        records: loaded records (their `image_path` must be set).
        task: a `vrft.tasks` task object (prompt, reward_columns).
        frame_fn: record -> `vrft.boxes.Frame` of that image for the model being trained (one per
            image, a list, for an ``images`` record).
        media: the many-image / video budgets (`MediaBudget`; None: its defaults). With ``images`` or
            ``video`` records the columns hold ``images`` (a list of RGB PIL images per row, opened on
            access: the images, or the sampled frames) instead of ``image``; see the module docstring.
    """
    return _to_dataset(_rows(records, task, frame_fn, with_answer=False, media=media))


def build_sft_dataset(
    records: Sequence[Record], task: Any, frame_fn: FrameFn, media: MediaBudget | None = None
):
    """Dataset for `trl.SFTTrainer` (conversational prompt-completion; loss on the completion).

    Columns: ``prompt`` (as for GRPO), ``completion`` (``[{"role": "assistant", "content":
    task.answer_text(record, frame)}]``: the full ``<think>..</think> <answer>..</answer>`` target),
    ``image`` (lazy RGB PIL image; ``images`` with several images or a video, as for GRPO),
    ``record_id``, ``image_id``.
    """
    return _to_dataset(_rows(records, task, frame_fn, with_answer=True, media=media))
