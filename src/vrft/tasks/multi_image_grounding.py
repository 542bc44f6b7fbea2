"""Multi-image grounding: which of images 1..N shows the expression, and where (one box in that image).

The answer is ``<answer>{"image": i, "bbox_2d": [x1, y1, x2, y2]}</answer>``: ``i`` 1-based, the box in
the model's coordinate convention RELATIVE TO IMAGE i (`vrft.parsing.parse_image_box`). Reward
columns: ``gt_image`` (the record's ``target_image``), ``gt_boxes`` (its one box, encoded in the frame
of image ``target_image``) and ``num_images`` (`vrft.rewards.multi_image`).

Frames: every image has its own `vrft.boxes.Frame` (its own size, so its own 0..1000 or resized
grid). The ``frame`` argument of this task's methods is either one Frame per image (a list, in the
order of ``images``: what the model-input code builds with the processor) or a single Frame, whose
convention is then applied to each image's size from ``image_sizes`` (not possible for
``resized_pixels``, which needs the processor's budget: pass the list). `image_frames` does this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vrft.parsing import parse_image_box
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, need, think_answer

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

PROMPT = (
    "Images 1..{n} are shown. In which image is {expression}? Give the image number and the box. {coords}"
)
ANSWER_TEMPLATE = '{"image": i, "bbox_2d": [x1, y1, x2, y2]}'

# convention -> the coordinate sentence (the box is relative to the image it is in)
COORDINATES: dict[str, str] = {
    "norm1000": "The box coordinates are integers between 0 and 1000, relative to the width and height of "
    "that image. ",
    "resized_pixels": "The box coordinates are absolute pixel coordinates (integers) of that image. ",
    "pixels": "The box coordinates are absolute pixel coordinates (integers) of that image. ",
}


def image_frames(record: Record, frame: Frame | Sequence[Frame] | None) -> list[Frame]:
    """One `Frame` per image of ``record``: ``frame`` itself when it is a list (one per image), else
    ``frame``'s convention (0..1000 when None) applied to each image's size (``record.visual_parts()``,
    the sizes of ``image_sizes``)."""
    from vrft.boxes import Frame

    need(record, "images", record.images)
    need(record, "image_sizes", record.image_sizes)
    sizes = [(part.width, part.height) for part in record.visual_parts()]
    if isinstance(frame, (list, tuple)):
        if len(frame) != len(sizes):
            raise ValueError(
                f"record {record.id!r}: {len(frame)} frames for {len(sizes)} images (give one per image)"
            )
        return list(frame)
    convention = frame.convention if frame is not None else "norm1000"
    if convention == "resized_pixels":
        raise ValueError(
            "multi_image_grounding with the 'resized_pixels' convention needs one Frame per image (each "
            "resized by the processor): pass a list of frames, e.g. vrft.models.load.frame_for per image"
        )
    return [Frame(w, h, convention) for w, h in sizes]


def _convention(frame: Frame | Sequence[Frame] | None) -> str:
    if isinstance(frame, (list, tuple)):
        return frame[0].convention if frame else "norm1000"
    return frame.convention if frame is not None else "norm1000"


def format_image_box(image: int, box: Sequence[int]) -> str:
    """The answer text: ``{"image": 2, "bbox_2d": [x1, y1, x2, y2]}``."""
    coords = ", ".join(str(int(v)) for v in box)
    return f'{{"image": {int(image)}, "bbox_2d": [{coords}]}}'


def _expression(record: Record) -> str:
    text = " ".join(str(need(record, "expression", record.expression)).split())
    return text.rstrip(".?!") or text


class MultiImageGroundingTask(Task):
    """Multi-image grounding. A record has ``images`` (+ ``image_sizes``), ``expression``,
    ``target_image`` (1-based) and ``boxes`` (one box, pixels of that image). Reward columns:
    ``gt_image``, ``gt_boxes`` (model convention of that image), ``num_images``."""

    name = "multi_image_grounding"
    max_new_tokens = 512

    def question(self, record: Record, frame: Frame | Sequence[Frame] | None) -> str:
        """``Images 1..N are shown. In which image is {expression}? Give the image number and the box.``,
        the coordinate sentence of the model's convention, and the format instruction."""
        n = len(need(record, "images", record.images))
        head = PROMPT.format(n=n, expression=_expression(record), coords=COORDINATES[_convention(frame)])
        return head + FORMAT_INSTRUCTION.replace("{answer}", ANSWER_TEMPLATE)

    def _target(self, record: Record, frame: Frame | Sequence[Frame] | None) -> tuple[int, list[int]]:
        """(target image, its box encoded in that image's frame)."""
        frames = image_frames(record, frame)
        target = need(record, "target_image", record.target_image)
        boxes = need(record, "boxes", record.boxes)
        if not boxes:
            need(record, "boxes", None)
        if not 1 <= int(target) <= len(frames):
            need(record, "target_image", None)
        return int(target), frames[int(target) - 1].encode(boxes[0])

    def answer(self, record: Record, frame: Frame | Sequence[Frame] | None = None) -> str:
        """The correct answer (inside ``<answer>``): ``{"image": t, "bbox_2d": [...]}`` (model convention)."""
        return format_image_box(*self._target(record, frame))

    def answer_text(self, record: Record, frame: Frame | Sequence[Frame] | None = None) -> str:
        """SFT target: ``<think> Locating: the star. </think> <answer>{"image": 2, "bbox_2d": [...]}</answer>``."""
        return think_answer(f"Locating: {_expression(record)}.", self.answer(record, frame), record)

    def reward_columns(self, record: Record, frame: Frame | Sequence[Frame] | None = None) -> dict[str, Any]:
        """``{"gt_image": t, "gt_boxes": [[x1, y1, x2, y2]], "num_images": N}`` (the box in the model's
        convention of image t)."""
        target, box = self._target(record, frame)
        return {"gt_image": target, "gt_boxes": [box], "num_images": len(record.images)}

    def read(self, answer: str | None, frame: Frame | Sequence[Frame] | None) -> dict[str, Any]:
        """The image number and its box: pixels of that image when ``frame`` is one Frame per image
        (an image number outside 1..N is then not ok), else the model's coordinates (a single Frame
        decodes the box with that frame)."""
        p = parse_image_box(answer)
        if not p.ok:
            return {"ok": False, "reason": p.reason, "image": p.image}
        box = list(p.box)
        if isinstance(frame, (list, tuple)):
            if not 1 <= p.image <= len(frame):
                return {
                    "ok": False,
                    "reason": f"image {p.image} out of range 1..{len(frame)}",
                    "image": p.image,
                }
            box = frame[p.image - 1].decode(box)
        elif frame is not None:
            box = frame.decode(box)
        return {"ok": True, "reason": "ok", "image": p.image, "boxes": [box], "scores": [1.0]}
