"""Temporal grounding sources -> `temporal_grounding` records (`vrft data convert charades|activitynet`).

**Charades-STA** (`convert_charades`): a text file, one query per line::

    VIDEO_ID START END##SENTENCE
    3MSZA 24.3 30.4##person turn a light on.

``START`` / ``END`` are seconds (unsigned decimals), the sentence follows ``##``. Each video is
``VIDEOS/VIDEO_ID.mp4`` (or ``--ext``; without it the first of .mp4, .webm, .mkv, .avi, .mov that
exists), or a folder of frames ``VIDEOS/VIDEO_ID/`` with ``--fps``. Its frame size is read from the
video header (`vrft.media.probe_video`); its duration is the ``length`` column of the Charades CSV
given with ``durations`` (``Charades_v1_test.csv``: columns ``id`` and ``length``, the timeline the
STA windows were annotated on), else the video header's.

**ActivityNet Captions** (`convert_activitynet`): a JSON object ``{VIDEO_ID: {"duration": D,
"timestamps": [[S, E], ...], "sentences": [...]}, ...}`` (``train.json``, ``val_1.json``,
``val_2.json``); one record per (timestamp, sentence) pair. Videos ``VIDEOS/VIDEO_ID.mp4`` (ids
keep their ``v_`` prefix) as above; the duration is the JSON's ``duration``.

Both: the sentence becomes ``event`` (trailing spaces and one final ``.`` removed), ``window`` is
``[START, END]``. Refused, every problem of every line listed as ``FILE:LINE: field: what (fix)``:
a missing or unreadable video (``skip_missing`` drops records whose video file is absent and
counts them instead), a malformed line, a time that is not a finite number >= 0, ``START >= END``,
a duration longer than the video (`vrft.media.duration_problem`: a timeline past the frames), an
``END`` after the duration by more than `vrft.media.WINDOW_TOLERANCE_S` (``clip`` cuts it to the
duration instead, when ``START`` is before it), a duration <= 0 or missing from the CSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrft.data.records import Record, finish_conversion
from vrft.errors import DataError, UserError
from vrft.media import MAX_VIDEO_SECONDS, WINDOW_TOLERANCE_S

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".mkv", ".avi", ".mov")
"""Tried in this order for a video id when no extension is given."""
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.IGNORECASE)


@dataclass
class _Videos:
    """Finds and probes the videos of a source (each once)."""

    root: Path
    ext: str | None
    fps: float | None
    skip_missing: bool
    cache: dict[str, Any] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def path(self, video_id: str) -> Path | None:
        folder = self.root / video_id
        if folder.is_dir():
            return folder
        exts = [self.ext] if self.ext else list(VIDEO_EXTENSIONS)
        for ext in exts:
            p = self.root / f"{video_id}{ext}"
            if p.is_file():
                return p
        return None

    def probe(self, video_id: str) -> tuple[Path, Any] | str | None:
        """(path, VideoInfo), a problem, or None for a missing video that is skipped."""
        if video_id in self.cache:
            return self.cache[video_id]
        from vrft.media import probe_video

        path = self.path(video_id)
        if path is None:
            if self.skip_missing:
                self.missing.add(video_id)
                got: Any = None
            else:
                tried = self.ext or "|".join(VIDEO_EXTENSIONS)
                got = (
                    f"video: {self.root / video_id}{{{tried}}} not found (check --videos / --ext, "
                    "or --skip-missing to drop the queries of absent videos)"
                )
        elif path.is_dir() and self.fps is None:
            got = f"video: {path} is a frame folder: give its frame rate with --fps"
        else:
            try:
                got = (path, probe_video(path, self.fps))
            except DataError as err:
                got = f"video: {err}"
        self.cache[video_id] = got
        return got


def _time(text: Any) -> float | str:
    """A time in seconds (finite, >= 0), or why not."""
    if isinstance(text, bool):
        return f"{text!r} is not a number of seconds"
    if isinstance(text, str):
        if not _NUMBER.match(text.strip()):
            return f"{text!r} is not a number of seconds"
        value = float(text)
    elif isinstance(text, (int, float)):
        value = float(text)
    else:
        return f"{text!r} is not a number of seconds"
    if not math.isfinite(value):
        return f"{text!r} is not a finite number of seconds"
    if value < 0:
        return f"{value:g} s is negative (times are seconds from the video's start)"
    return value


def _event(sentence: str) -> str:
    text = sentence.strip()
    return text[:-1].rstrip() if text.endswith(".") else text


def _window(
    start: Any, end: Any, duration: float, clip: bool, where: str, problems: list[str]
) -> list[float] | None:
    s, e = _time(start), _time(end)
    bad = len(problems)
    if isinstance(s, str):
        problems.append(f"{where}: start: {s}")
    if isinstance(e, str):
        problems.append(f"{where}: end: {e}")
    if len(problems) > bad:
        return None
    if s >= e:
        problems.append(
            f"{where}: window: start {s:g} >= end {e:g} (a window needs start < end; fix or drop the line)"
        )
        return None
    if e > duration + WINDOW_TOLERANCE_S:
        if clip and s < duration:
            e = duration
        else:
            fix = "use --clip to cut it to the duration" if s < duration else "fix or drop the line"
            problems.append(f"{where}: end: {e:g} s is after the video's end ({duration:g} s): {fix}")
            return None
    return [round(s, 3), round(e, 3)]


def _duration(value: Any, where: str, what: str, problems: list[str]) -> float | None:
    d = _time(value)
    if isinstance(d, str) or d <= 0 or d > MAX_VIDEO_SECONDS:
        why = d if isinstance(d, str) else f"{d:g} s (must be > 0 and <= {MAX_VIDEO_SECONDS:g} s)"
        problems.append(f"{where}: duration: {why} ({what})")
        return None
    return d


def _longer_than_video(duration: float, vpath: Path, info: Any, where: str, problems: list[str]) -> bool:
    """Add a problem (and say so) when the annotated duration outlasts the video (`vrft.media.duration_problem`)."""
    from vrft.media import duration_problem

    problem = duration_problem(duration, info.duration)
    if problem:
        problems.append(f"{where}: duration: {vpath}: {problem}")
    return problem is not None


def read_durations(path: str | os.PathLike) -> dict[str, tuple[str, Any]]:
    """``{id: (FILE:LINE, length)}`` of a Charades CSV (columns ``id`` and ``length``)."""
    from vrft.inputs import check_file

    path = check_file(path, "durations CSV")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "id" not in reader.fieldnames or "length" not in reader.fieldnames:
                raise DataError(
                    f"{path}:1: header: needs the columns 'id' and 'length' (the Charades CSV, e.g. "
                    f"Charades_v1_test.csv); found {reader.fieldnames}"
                )
            return {
                row["id"].strip(): (f"{path}:{reader.line_num}", row["length"]) for row in reader if row["id"]
            }
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (give the Charades CSV)") from None
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None


def _check_options(videos_dir: Path, ext: str | None, fps: float | None) -> None:
    if not videos_dir.is_dir():
        raise UserError(f"--videos {videos_dir}: not a folder (give the folder holding the videos)")
    if ext is not None and not (ext.startswith(".") and len(ext) > 1):
        raise UserError(f"--ext {ext!r}: a file extension with its dot, e.g. .mp4")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UserError(f"--fps {fps}: the frame rate of frame folders must be > 0")


def _finish(records: list[Record], problems: list[str], path: Path, videos: _Videos, out) -> list[Record]:
    skipped = f" ({len(videos.missing)} videos missing, skipped)" if videos.missing else ""
    return finish_conversion(records, problems, path, out, f"no queries to convert{skipped}")


def _record(
    rid: str, path: Path, info: Any, duration: float, event: str, window: list[float], fps: float | None,
    where: str, meta: dict,
) -> Record:  # fmt: skip
    folder = path.is_dir()
    return Record(
        id=rid,
        task="temporal_grounding",
        video=str(path) + ("/" if folder else ""),
        video_path=path.resolve(),
        width=int(info.width),
        height=int(info.height),
        duration=round(float(duration), 3),
        fps=float(fps) if folder else None,
        event=event,
        window=window,
        meta=meta,
        source=where,
    )


def convert_charades(
    path: str | os.PathLike,
    videos_dir: str | os.PathLike,
    *,
    durations: str | os.PathLike | None = None,
    ext: str | None = None,
    fps: float | None = None,
    clip: bool = False,
    skip_missing: bool = False,
    id_prefix: str = "charades",
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """Charades-STA lines -> temporal_grounding records (see the module). Returns the records (and
    writes them to `out` as JSONL when given); DataError listing every problem otherwise."""
    from vrft.inputs import iter_lines

    path, videos_dir = Path(path), Path(videos_dir)
    _check_options(videos_dir, ext, fps)
    lengths = read_durations(durations) if durations is not None else None
    videos = _Videos(videos_dir, ext, fps, skip_missing)
    problems: list[str] = []
    records: list[Record] = []
    for n, line in iter_lines(path, "Charades-STA annotation file"):
        where = f"{path}:{n}"
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3 or not sentence.strip():
            problems.append(
                f"{where}: line: {line.strip()[:80]!r} is not 'VIDEO_ID START END##SENTENCE' (Charades-STA format)"
            )
            continue
        video_id, start, end = parts
        got = videos.probe(video_id)
        if got is None:
            continue
        if isinstance(got, str):
            problems.append(f"{where}: {got}")
            continue
        vpath, info = got
        if lengths is not None:
            if video_id not in lengths:
                problems.append(
                    f"{where}: duration: video {video_id} is not in {durations} (give the CSV of this split)"
                )
                continue
            csv_where, length = lengths[video_id]
            duration = _duration(length, csv_where, "the 'length' column", problems)
        else:
            duration = _duration(
                info.duration, where, f"read from {vpath}'s header; give --durations CSV", problems
            )
        if duration is None or _longer_than_video(duration, vpath, info, where, problems):
            continue
        window = _window(start, end, duration, clip, where, problems)
        if window is None:
            continue
        records.append(
            _record(f"{id_prefix}-{video_id}-{n}", vpath, info, duration, _event(sentence), window, fps, where,
                    {"video_id": video_id})
        )  # fmt: skip
    return _finish(records, problems, path, videos, out)


def _key_lines(text: str) -> dict[str, int]:
    """The 1-based line of each top-level-looking ``"key": {`` in a JSON text (for error locations)."""
    lines: dict[str, int] = {}
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:\s*\{', text):
        try:
            key = json.loads(f'"{m.group(1)}"')
        except json.JSONDecodeError:
            continue
        lines.setdefault(key, text.count("\n", 0, m.start()) + 1)
    return lines


def convert_activitynet(
    path: str | os.PathLike,
    videos_dir: str | os.PathLike,
    *,
    ext: str | None = None,
    fps: float | None = None,
    clip: bool = False,
    skip_missing: bool = False,
    id_prefix: str = "anet",
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """ActivityNet Captions JSON -> temporal_grounding records (see the module)."""
    from vrft.inputs import check_file

    path, videos_dir = Path(path), Path(videos_dir)
    _check_options(videos_dir, ext, fps)
    check_file(path, "ActivityNet Captions JSON")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (give the ActivityNet Captions JSON)") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise DataError(
            f"{path}:1: expected an object {{video_id: {{duration, timestamps, sentences}}}} (ActivityNet Captions)"
        )
    lines = _key_lines(text)
    videos = _Videos(videos_dir, ext, fps, skip_missing)
    problems: list[str] = []
    records: list[Record] = []
    for video_id, entry in data.items():
        where = f"{path}:{lines.get(video_id, 1)}"
        if not isinstance(entry, dict):
            problems.append(
                f"{where}: {video_id}: expected an object with duration, timestamps and sentences"
            )
            continue
        stamps, sentences = entry.get("timestamps"), entry.get("sentences")
        if not isinstance(stamps, list) or not isinstance(sentences, list) or len(stamps) != len(sentences):
            problems.append(
                f"{where}: timestamps: {video_id} needs the lists 'timestamps' and 'sentences' of one length "
                f"(got {type(stamps).__name__} / {type(sentences).__name__})"
            )
            continue
        duration = _duration(entry.get("duration"), where, f"the 'duration' of {video_id}", problems)
        if duration is None:
            continue
        got = videos.probe(video_id)
        if got is None:
            continue
        if isinstance(got, str):
            problems.append(f"{where}: {got}")
            continue
        vpath, info = got
        if _longer_than_video(duration, vpath, info, where, problems):
            continue
        for i, (stamp, sentence) in enumerate(zip(stamps, sentences)):
            at = f"{where}: {video_id} timestamps[{i}]"
            if not (isinstance(stamp, list) and len(stamp) == 2):
                problems.append(f"{at}: {stamp!r} is not [start, end] in seconds")
                continue
            if not isinstance(sentence, str) or not sentence.strip():
                problems.append(f"{at}: sentence: {sentence!r} must be non-empty text")
                continue
            window = _window(stamp[0], stamp[1], duration, clip, at, problems)
            if window is None:
                continue
            records.append(
                _record(f"{id_prefix}-{video_id}-{i}", vpath, info, duration, _event(sentence), window, fps, where,
                        {"video_id": video_id})
            )  # fmt: skip
    return _finish(records, problems, path, videos, out)
