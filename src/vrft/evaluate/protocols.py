"""Detection evaluation protocols: which (image, category) queries the model is asked.

- ``all-categories``: every selected category is asked for every image (one detection prompt per
  (image, category)). A category the records file does not list for an image is asked too; its
  ground truth then comes from the COCO/LVIS file when one is given, else it is "No Objects".
- ``paper``: first a PRESENCE pass, one yes/no prompt per (image, category) (`PRESENCE_PROMPT`),
  then the detection prompt only for the pairs the model answered "yes"; the others count as empty
  predictions. The model being evaluated runs its OWN presence pass (the reference reused the
  baseline model's answers for every model; we do not by default). With a `PresenceMap` (``vrft
  eval --presence-from``: another run's presence answers, or the reference's published
  ``exist_map_*.json``) the pass is not run and the map decides: the paper's exact protocol.
- ``records``: exactly the (image, category) pairs of the records file, nothing added. With records
  that ask only for the categories present in each image this is an oracle-presence protocol: it
  measures localisation, not whether the model can tell a category is absent.

The selected categories are ``categories`` when given, else every category named in the records.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrft.data.records import Record, format_problems
from vrft.errors import DataError, UserError
from vrft.evaluate.coco import category_ids_by_name, gt_from_records, image_key

logger = logging.getLogger(__name__)

PROTOCOLS = ("all-categories", "paper", "records")

PRESENCE_PROMPT = (
    "Is there any object belonging to the category '{category}' in the image? "
    "Answer with yes or no in <answer> </answer> tags."
)
"""The paper protocol's presence question, one per (image, category)."""
PRESENCE_MAX_NEW_TOKENS = 64

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_presence(text: str | None) -> bool:
    """True when the answer (inside ``<answer>`` tags if present, else the whole text) says yes first.

    The first whole word "yes" or "no" decides; anything else (no such word) is "no"."""
    from vrft.parsing import lenient_answer

    if not text:
        return False
    m = _YES_NO.search(lenient_answer(text))
    return bool(m) and m.group(1).lower() == "yes"


@dataclass
class DetectionSetup:
    """Ground truth, the selected categories and the queries of one detection evaluation.

    Attributes:
        gt: COCO (or LVIS) ground-truth dataset dict.
        image_ids: image key (record ``image_id``, or image path) -> image id in `gt`.
        categories: the selected category names (as the records / prompts write them), in order.
        category_ids: selected category name -> category id in `gt`.
        queries: one detection record per asked (image, selected category), image order kept.
        lvis: whether `gt` is an LVIS file (federated evaluation).
        lvis_area: LVIS per-class AP over area "all" (default) or "average" (the reference's scoring
            notebook: every defined precision of the four area ranges averaged; `lvis_metrics`).
    """

    gt: dict
    image_ids: dict[Any, int]
    categories: list[str]
    category_ids: dict[str, int]
    queries: list[Record] = field(default_factory=list)
    lvis: bool = False
    lvis_area: str = "all"


def _boxes_from_gt(gt: dict):
    """``(boxes, crowd)``: (image id, category id) -> pixel boxes, and the crowd regions apart."""
    from vrft.data.coco import gt_boxes

    split = gt_boxes(gt)  # the one xywh -> xyxy + crowd split (crowd boxes are not targets)
    return split.boxes, split.crowd


def resolve_category(name: str, ids_by_name: dict[str, int]) -> int | None:
    """The id of category `name` in a GT file: exact name, else LVIS style (spaces -> underscores),
    else case-insensitive; None when absent."""
    if name in ids_by_name:
        return ids_by_name[name]
    underscored = name.replace(" ", "_")
    if underscored in ids_by_name:
        return ids_by_name[underscored]
    folded = {k.casefold(): v for k, v in ids_by_name.items()}
    return folded.get(name.casefold(), folded.get(underscored.casefold()))


def _category_ids(
    records: Sequence[Record], categories: list[str], gt: dict, use_meta: bool
) -> dict[str, int]:
    """Selected name -> GT id: with `use_meta` (a GT file was given) the records'
    ``meta["category_id"]`` (written by the converters) when present, else by name (`resolve_category`)."""
    by_name = category_ids_by_name(gt)
    known_ids = set(by_name.values())
    from_meta: dict[str, int] = {}
    for r in records if use_meta else ():
        cid = (r.meta or {}).get("category_id")
        if isinstance(cid, int) and cid in known_ids:
            from_meta.setdefault(r.category, cid)
    out: dict[str, int] = {}
    unknown = []
    for c in categories:
        cid = from_meta.get(c, resolve_category(c, by_name))
        if cid is None:
            unknown.append(c)
        else:
            out[c] = cid
    if unknown:
        raise DataError(
            f"categories not in the ground-truth file: {', '.join(map(repr, unknown[:20]))} "
            "(names must match its 'categories'; LVIS names may use spaces for underscores)"
        )
    return out


def detection_setup(
    records: Sequence[Record],
    *,
    gt: dict | None = None,
    categories: Sequence[str] | None = None,
    lvis: bool = False,
    add_missing: bool = True,
) -> DetectionSetup:
    """Build the ground truth and the all-categories queries for detection `records`.

    Args:
        records: detection records (one per asked (image, category); more than one image each).
        gt: a COCO / LVIS ground-truth dict; default: built from the records (`gt_from_records`).
        categories: the selected categories (default: every category named in the records).
        lvis: `gt` is an LVIS file. Then a pair is only asked when LVIS evaluates it (the class is
            annotated in the image, verified absent, or not exhaustively annotated); LVIS ignores
            detections of any other class in that image, so asking would change nothing.
        add_missing: ask the selected categories a records file does not list for an image (the
            all-categories protocol); False: only the records' own pairs (the ``records`` protocol).

    Raises:
        DataError: a record's image or category is not in `gt`, or a selected category is unknown.
    """
    records = [r for r in records if r.task == "detection"]
    if not records:
        raise DataError("no detection records to evaluate (check --task / the records file)")
    if categories is None:
        categories = list(dict.fromkeys(r.category for r in records))
    categories = list(dict.fromkeys(categories))
    gt_given = gt is not None
    if gt is None:
        if lvis:
            raise UserError("LVIS evaluation needs the LVIS annotation file: pass --lvis-gt lvis_v1_val.json")
        gt, image_ids = gt_from_records(records)
        known = {c["name"] for c in gt["categories"]}
        for name in categories:  # selected but absent from every record: a class without GT here
            if name not in known:
                gt["categories"].append({"id": len(gt["categories"]) + 1, "name": name})
    else:
        gt_images = {img["id"] for img in gt["images"]}
        image_ids = {}
        missing = []
        for r in records:
            key = image_key(r)
            if isinstance(key, int) and key in gt_images:
                image_ids[key] = key
            else:
                missing.append(f"{r.source or r.id}: image_id {key!r}")
        if missing:
            raise DataError(
                "records whose image_id is not an image of the ground-truth file (convert the records from "
                "that file so that image_id is its image id):\n  " + "\n  ".join(missing[:20])
            )
    cat_ids = _category_ids(records, categories, gt, use_meta=gt_given)
    gt_boxes, gt_crowd = _boxes_from_gt(gt)
    evaluated: dict[int, set[int]] | None = None
    if lvis:
        evaluated = {
            img["id"]: set(img.get("neg_category_ids", [])) | set(img.get("not_exhaustive_category_ids", []))
            for img in gt["images"]
        }
        for a in gt["annotations"]:
            evaluated.setdefault(a["image_id"], set()).add(a["category_id"])
    by_pair = {(image_key(r), r.category): r for r in reversed(records)}
    used_ids = {r.id for r in records}
    first_of_image: dict[Any, Record] = {}
    for r in records:
        first_of_image.setdefault(image_key(r), r)
    queries: list[Record] = []
    for key, template in first_of_image.items():
        iid = image_ids[key]
        for cat in categories:
            rec = by_pair.get((key, cat))
            if rec is None:
                if not add_missing:
                    continue
                if evaluated is not None and cat_ids[cat] not in evaluated.get(iid, ()):
                    continue
                rid = f"{key}-{cat}"
                while rid in used_ids:
                    rid += "+"
                used_ids.add(rid)
                rec = Record(
                    id=rid,
                    task="detection",
                    image=template.image,
                    width=template.width,
                    height=template.height,
                    image_id=template.image_id,
                    category=cat,
                    prompt=template.prompt if template.prompt and "{category}" in template.prompt else None,
                    answer_format=template.answer_format,
                    boxes=gt_boxes.get((iid, cat_ids[cat]), []),
                    meta={"category_id": cat_ids[cat]}
                    | (
                        {"crowd_boxes": gt_crowd[(iid, cat_ids[cat])]}
                        if gt_crowd.get((iid, cat_ids[cat]))
                        else {}
                    ),
                    image_path=template.image_path,
                    source=f"{template.source or template.id} (category {cat!r} added by the protocol)",
                )
            queries.append(rec)
    given = {r.id for r in records}
    logger.info(
        "detection: %d images, %d categories, %d queries (%d from the records file)",
        len(first_of_image),
        len(categories),
        len(queries),
        sum(1 for q in queries if q.id in given),
    )
    return DetectionSetup(
        gt=gt, image_ids=image_ids, categories=categories, category_ids=cat_ids, queries=queries, lvis=lvis
    )


def _norm_category(name: str) -> str:
    return " ".join(str(name).replace("_", " ").split()).casefold()


def presence_key(record: Record) -> str:
    """The image key a presence map uses: the image id as text, else the image path."""
    return str(record.image_id) if record.image_id is not None else str(record.resolved_image())


@dataclass
class PresenceMap:
    """Per image, the categories another model said are present (``vrft eval --presence-from``).

    Attributes:
        source: the file it was read from.
        present: image key (`presence_key`) -> normalised names (underscores as spaces, case-folded,
            so ``egg_roll`` matches ``egg roll``) answered present.
    """

    source: str
    present: dict[str, set[str]]

    def says_present(self, record: Record) -> bool | None:
        """Whether the map lists the record's category for its image; None for an image it lacks."""
        names = self.present.get(presence_key(record))
        if names is None:
            return None
        return _norm_category(record.category or "") in names


def load_presence_map(path: str | os.PathLike) -> PresenceMap:
    """Read a presence map from either
    - a JSON object ``{"<image id>": ["category", ...], ...}`` (the reference's
      ``exist_map_coco_Qwen2_vl_2B_baseline.json`` / ``exist_map_lvis_...`` files), or
    - a ``predictions.jsonl`` of a ``vrft eval --protocol paper`` run (lines with ``image_id``,
      ``category`` and ``presence``).

    Raises:
        DataError: unreadable file, wrong shape (every problem listed), or a predictions file without
            presence answers.
    """
    from vrft.inputs import parse_json_line, read_text

    p = Path(path)
    text = read_text(p, "presence map (--presence-from)")  # not found, a directory, not UTF-8: DataError
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        whole = None
    if isinstance(whole, dict) and not {"category", "completion", "presence"} & set(whole):
        problems = [
            f"{p}: key {k!r}: expected a list of category names"
            for k, v in whole.items()
            if not (isinstance(v, list) and all(isinstance(c, str) for c in v))
        ]
        if problems:
            raise DataError(format_problems(problems, f"{p}: {len(problems)} problem(s):"))
        return PresenceMap(str(p), {str(k): {_norm_category(c) for c in v} for k, v in whole.items()})
    present: dict[str, set[str]] = {}
    problems = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row, why = parse_json_line(line)
        if why:
            problems.append(f"{p}:{n}: {why}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("category"), str):
            problems.append(f"{p}:{n}: expected an object with image_id, category and presence")
            continue
        answer = row.get("presence")
        if answer is None:
            continue
        key = str(row["image_id"]) if row.get("image_id") is not None else str(row.get("image"))
        names = present.setdefault(key, set())
        if answer is True:
            names.add(_norm_category(row["category"]))
    if problems:
        raise DataError(format_problems(problems, f"{p}: {len(problems)} problem(s):"))
    if not present:
        raise DataError(
            f"{p}: no presence answers (neither a {{image id: [categories]}} JSON object nor the "
            "predictions.jsonl of a `vrft eval --protocol paper` run)"
        )
    return PresenceMap(str(p), present)


def apply_presence_map(
    queries: Sequence[Record], completions: Sequence[str | None], presence_map: PresenceMap
) -> tuple[list[str | None], list[bool]]:
    """The paper protocol with a given map: a query the map does not list as present is not asked
    (its completion becomes None); returns (completions, presence answers). An image missing from
    the map counts as "nothing present" (logged)."""
    out, presence, missing = [], [], set()
    for q, c in zip(queries, completions):
        said = presence_map.says_present(q)
        if said is None:
            missing.add(presence_key(q))
        presence.append(bool(said))
        out.append(c if said else None)
    if missing:
        logger.warning(
            "%d evaluated image(s) are not in the presence map %s: nothing asked there (e.g. %s)",
            len(missing),
            presence_map.source,
            sorted(missing)[:3],
        )
    return out, presence


def presence_prompt(record: Record) -> str:
    """The presence question for a detection record's (image, category)."""
    return PRESENCE_PROMPT.format(category=record.category)
