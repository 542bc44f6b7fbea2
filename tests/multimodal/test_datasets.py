"""Many images and video reach TRL: the GRPO / SFT datasets hold an ``images`` list per row (the
images, or the sampled video frames) with one placeholder per image in the user turn, in order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from trl.data_utils import prepare_multimodal_messages

from vrft.boxes import Frame
from vrft.data.fewshot import image_key, split_by_image
from vrft.data.hf import build_grpo_dataset, build_sft_dataset
from vrft.data.records import Record, load_records, save_records
from vrft.data.visual_inputs import MediaBudget, load_visuals, visual_spec
from vrft.errors import DataError
from vrft.media import sample_frames, video_timestamps
from vrft.tasks import TASKS
from vrft.tasks.base import record_frame


def norm1000(record):
    return record_frame(record, lambda w, h: Frame(w, h, "norm1000"))


def _placeholders(prompt) -> list[dict]:
    return [part for part in prompt[0]["content"] if part["type"] == "image"]


def _texts(prompt) -> list[str]:
    return [part["text"] for part in prompt[0]["content"] if part["type"] == "text"]


def test_multi_image_rows_hold_every_image_in_order(media_world):
    records = load_records(media_world / "multi_image_grounding.jsonl")
    ds = build_grpo_dataset(records, TASKS["multi_image_grounding"], norm1000, MediaBudget(max_images=4))
    assert "image" not in ds.column_names and "visuals" in ds.column_names
    assert ds.features["visuals"].dtype == "string"  # lazy: the Arrow table holds paths, never pixels
    for rec, row in zip(records, ds):
        files = [np.asarray(Image.open(p).convert("RGB")) for p in rec.image_paths]
        assert len(row["images"]) == len(files) >= 2
        assert all(np.array_equal(np.asarray(im), f) for im, f in zip(row["images"], files))
        # one placeholder per image, each after its caption; TRL fills them in order
        assert len(_placeholders(row["prompt"])) == len(files)
        assert _texts(row["prompt"])[: len(files)] == [f"Image {i}:" for i in range(1, len(files) + 1)]
        assert _texts(row["prompt"])[-1].strip().startswith(f"Images 1..{len(files)} are shown.")
        filled = prepare_multimodal_messages(row["prompt"], images=row["images"])
        shown = [p["image"] for p in filled[0]["content"] if p["type"] == "image"]
        assert [id(x) for x in shown] == [id(x) for x in row["images"]]
        # the reward columns of the task, in the convention of the target image
        assert row["gt_image"] == rec.target_image and row["num_images"] == len(files)


def test_video_rows_hold_the_sampled_frames_after_their_timestamps(media_world):
    records = load_records(media_world / "temporal_grounding.jsonl")
    budget = MediaBudget(
        video_fps=2.0, video_max_frames=3, video_max_pixels=40 * 40, video_min_pixels=16 * 16
    )
    ds = build_grpo_dataset(records, TASKS["temporal_grounding"], norm1000, budget)
    for rec, row in zip(records, ds):
        times = video_timestamps(rec.duration, 2.0, 3)
        assert len(times) == 3
        expected = sample_frames(rec.visual_parts()[0], 2.0, 3, 40 * 40, 16 * 16)
        assert len(row["images"]) == 3 and [im.size for im in row["images"]] == [(40, 40)] * 3
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, (_, b) in zip(row["images"], expected))
        texts = _texts(row["prompt"])
        assert texts[0] == f"Video of {rec.duration:g} s, 3 frames.\n"
        assert texts[1:4] == [f"{t:g} s:" for t in times]
        assert "When does" in texts[-1] and len(_placeholders(row["prompt"])) == 3
        assert row["gt_window"] == rec.window


def test_sft_rows_and_a_one_image_record_among_them(media_world, tmp_path):
    recs = load_records(media_world / "multi_image_grounding.jsonl")[:2]
    Image.new("RGB", (30, 20), (9, 9, 9)).save(tmp_path / "one.png")
    single = Record(id="one", task="multi_image_grounding", images=[str(tmp_path / "one.png")],
                    image_sizes=[[30, 20]], expression="x", target_image=1, boxes=[[1, 1, 10, 10]])  # fmt: skip
    mixed = recs + [single]
    save_records(mixed, tmp_path / "m.jsonl")
    mixed = load_records(tmp_path / "m.jsonl")
    ds = build_sft_dataset(mixed, TASKS["multi_image_grounding"], norm1000)
    assert ds[2]["images"][0].size == (30, 20) and len(ds[2]["images"]) == 1
    assert ds[0]["completion"][0]["content"].startswith("<think>")
    assert '"image": ' in ds[0]["completion"][0]["content"]


def test_too_many_images_are_refused(media_world):
    records = load_records(media_world / "multi_image_grounding.jsonl")
    many = max(records, key=lambda r: len(r.images))
    with pytest.raises(DataError, match=r"more than model.max_images=1 \(raise model.max_images"):
        build_grpo_dataset([many], TASKS["multi_image_grounding"], norm1000, MediaBudget(max_images=1))


def test_a_bad_video_is_a_data_error_on_access(media_world, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes((media_world / "video" / "000000.mp4").read_bytes()[:200])  # truncated
    rec = Record(id="v", task="temporal_grounding", video=str(bad), duration=2.0, width=56, height=56,
                 event="e", window=[0.5, 1.0])  # fmt: skip
    spec = visual_spec(rec, MediaBudget(video_max_frames=2))
    with pytest.raises(DataError, match="bad.mp4"):
        load_visuals(json.dumps(spec))


def test_split_and_fewshot_key_by_the_visuals(media_world):
    videos = load_records(media_world / "temporal_grounding.jsonl")
    sets = load_records(media_world / "multi_image_grounding.jsonl")
    assert image_key(videos[0]).endswith("000000.mp4")
    assert image_key(sets[0]).count("\n") == len(sets[0].images) - 1
    assert len({image_key(r) for r in videos + sets}) == 8
    train, test = split_by_image(videos + sets, 0.5, seed=0)
    assert len(train) == len(test) == 4 and not {image_key(r) for r in train} & {image_key(r) for r in test}


def test_the_speed_policy_reads_vrfts_own_media_datasets_as_several_images(media_world):
    """`vrft.train.speed.media_of` on the datasets vrft builds: several images and video-as-frames are
    "images" (the ``visuals`` column), one image per record stays "image"; nothing is decoded."""
    from vrft.train import speed

    for task in ("multi_image_grounding", "temporal_grounding"):
        records = load_records(media_world / f"{task}.jsonl")
        ds = build_grpo_dataset(records, TASKS[task], norm1000, MediaBudget(max_images=4))
        assert speed.media_of(ds.with_transform(lambda batch: 1 / 0)) == "images"
    first = load_records(media_world / "multi_image_grounding.jsonl")[0].image_paths[0]
    one = Record(id="one", task="grounding", image=str(first), width=8, height=8, expression="the circle",
                 boxes=[[0, 0, 4, 4]])  # fmt: skip
    one.image_path = first
    assert speed.media_of(build_grpo_dataset([one], TASKS["grounding"], norm1000)) == "image"


@pytest.mark.parametrize("task", ["temporal_grounding", "multi_image_grounding"])
def test_sft_max_length_preflight_counts_every_image_and_frame(tmp_path, media_world, task):
    from vrft.data.hf import user_turn
    from vrft.models.load import frame_for, load_processor
    from vrft.train.builder import get_task
    from vrft.train.preflight import prompt_tokens_needed

    from .conftest import media_config

    cfg = media_config(tmp_path, "qwen2_5_vl", task, media_world)
    records = load_records(cfg.data.train)
    need, _ = prompt_tokens_needed(cfg, records)
    processor = load_processor(
        cfg.model.path, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels
    )
    media = MediaBudget.of(cfg.model)
    actual = 0
    for r in records:  # what the processor really makes of each prompt with its images
        frame = record_frame(r, lambda w, h: frame_for(w, h, "resized_pixels", processor))
        spec = visual_spec(r, media)
        text = processor.apply_chat_template(
            user_turn(get_task(task).prompt(r, frame), spec), add_generation_prompt=True, tokenize=False
        )
        ids = processor(text=[text], images=[load_visuals(spec)], return_tensors="pt")["input_ids"]
        actual = max(actual, ids.shape[1])
    assert need == actual


def test_one_set_of_media_budget_names():
    """`vrft.media.BUDGET_NAMES` is what MediaBudget holds, what the config's model section and a
    vrft.json carry, and what eval / predict take as options."""
    import argparse
    import dataclasses

    from vrft.commands._generation import add_media_arguments
    from vrft.config import VrftConfig
    from vrft.media import BUDGET_NAMES
    from vrft.models.contract import MEDIA_BUDGETS, ModelContract

    assert tuple(f.name for f in dataclasses.fields(MediaBudget)) == BUDGET_NAMES == MEDIA_BUDGETS
    model_fields = VrftConfig.model_fields["model"].annotation.model_fields
    contract_fields = {f.name for f in dataclasses.fields(ModelContract)}
    assert all(name in model_fields and name in contract_fields for name in BUDGET_NAMES)
    parser = argparse.ArgumentParser()
    add_media_arguments(parser)
    assert tuple(a.dest for a in parser._actions if a.dest != "help") == BUDGET_NAMES
