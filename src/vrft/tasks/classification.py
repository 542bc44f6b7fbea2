"""Fine-grained classification: the answer is a class name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrft.parsing import parse_label
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, need, think_answer

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

DEFAULT_OBJECT = "object"
DEFAULT_ATTRIBUTE = "category"

PROMPT = (
    "This is an image containing {article} {object}. Please identify the {attribute} of the {object} "
    "based on the image. "
) + FORMAT_INSTRUCTION.replace("{answer}", "{attribute} name")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class ClassificationTask(Task):
    """The paper's classification task. Reward columns: ``gt_label``, ``gt_aliases``."""

    name = "classification"
    max_new_tokens = 1024

    @staticmethod
    def domain(record: Record) -> tuple[str, str]:
        """(object, attribute) from ``record.domain``, defaulting to ("object", "category")."""
        d = record.domain or {}
        obj = str(d.get("object") or DEFAULT_OBJECT).strip() or DEFAULT_OBJECT
        attr = str(d.get("attribute") or DEFAULT_ATTRIBUTE).strip() or DEFAULT_ATTRIBUTE
        return obj, attr

    def question(self, record: Record, frame: Frame | None) -> str:
        """E.g. "This is an image containing a flower. Please identify the species of the flower ..."."""
        obj, attr = self.domain(record)
        return PROMPT.format(article=_article(obj), object=obj, attribute=attr)

    def answer(self, record: Record, frame: Frame | None = None) -> str:
        """The correct answer (the text inside ``<answer>``): the label."""
        return need(record, "label", record.label)

    def answer_text(self, record: Record, frame: Frame | None = None) -> str:
        """SFT target: ``<think> The species of this flower is rose. </think> <answer>rose</answer>``."""
        label = need(record, "label", record.label)
        obj, attr = self.domain(record)
        return think_answer(f"The {attr} of this {obj} is {label}.", label, record)

    def reward_columns(self, record: Record, frame: Frame | None = None) -> dict[str, Any]:
        """``{"gt_label": str, "gt_aliases": list[str] | None}``."""
        return {
            "gt_label": need(record, "label", record.label),
            "gt_aliases": list(record.aliases) if record.aliases else None,
        }

    def read(self, answer: str | None, frame: Frame | None) -> dict[str, Any]:
        """The label (stripped, whitespace collapsed)."""
        p = parse_label(answer)
        return {"ok": p.ok, "reason": p.reason, "label": p.label if p.ok else None}
