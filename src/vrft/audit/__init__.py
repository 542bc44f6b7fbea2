"""A reward-hacking audit: score a battery of exploit completions against the honest answer.

For every record (the shapes world drawn in memory, or a records file) the task's honest completion
(its SFT target: the ground truth in the task's answer format) and every exploit of the task's battery
are scored with the chosen rewards. An exploit is FLAGGED when its mean weighted total over the records
it applies to is at least the honest answer's mean total on the same records: the reward does not
prefer the truth to it, so GRPO has no reason to either.

Adding a task: write generators ``fn(case: AuditCase) -> str | None`` (a completion, or None where the
exploit does not apply to that record, e.g. duplicating the boxes of a record without boxes) and list
them in :data:`EXPLOITS` under the task's name, with ``**COMMON_EXPLOITS``. ``case.wrap(answer)`` puts an
answer text in the honest completion's format, so an exploit differs from the honest answer only where
it means to. This module takes plain arguments; ``vrft audit`` (vrft.commands.audit) is its CLI.

Modules: `case` (what a generator sees, the answer writers, the records), `exploits` (the battery),
`score` (the scoring, the flags and the table).
"""

from vrft.audit.case import AuditCase, ExploitFn, box_text, detections, make_cases, shapes_records
from vrft.audit.exploits import COMMON_EXPLOITS, EXPLOITS
from vrft.audit.score import TIE, AuditReport, Row, audit, format_table

__all__ = [
    "COMMON_EXPLOITS",
    "EXPLOITS",
    "TIE",
    "AuditCase",
    "AuditReport",
    "ExploitFn",
    "Row",
    "audit",
    "box_text",
    "detections",
    "format_table",
    "make_cases",
    "shapes_records",
]
