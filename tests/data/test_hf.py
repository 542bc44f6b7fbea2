from PIL import Image
from trl.data_utils import prepare_multimodal_messages

from vrft.data.hf import build_grpo_dataset, build_sft_dataset
from vrft.data.records import Record, load_records, save_records


class FakeTask:
    """Stands in for a vrft.tasks task: norm1000 boxes, a fixed answer format."""

    def prompt(self, record):
        return f"Find {record.category}."

    def answer_text(self, record, frame):
        return f"<think>x</think> <answer>{[frame.encode(b) for b in record.boxes] if record.boxes else 'No Objects'}</answer>"

    def reward_columns(self, record, frame):
        return {"gt_boxes": [frame.encode(b) for b in record.boxes]}


class FakeFrame:
    def __init__(self, w, h):
        self.w, self.h = w, h

    def encode(self, box):
        return [
            int(box[0] / self.w * 1000),
            int(box[1] / self.h * 1000),
            int(box[2] / self.w * 1000),
            int(box[3] / self.h * 1000),
        ]


def _records(tmp_path):
    Image.new("L", (20, 10), 100).save(tmp_path / "gray.png")
    Image.new("RGBA", (20, 10), (1, 2, 3, 4)).save(tmp_path / "rgba.png")
    recs = [
        Record(id="a", task="detection", image="gray.png", width=20, height=10, category="cat", image_id=1,
               boxes=[[0, 0, 10, 5]]),
        Record(id="b", task="detection", image="rgba.png", width=20, height=10, category="dog", image_id=2),
    ]  # fmt: skip
    save_records(recs, tmp_path / "r.jsonl")
    return load_records(tmp_path / "r.jsonl")


def test_grpo_dataset(tmp_path):
    ds = build_grpo_dataset(_records(tmp_path), FakeTask(), lambda r: FakeFrame(r.width, r.height))
    assert set(ds.column_names) == {"prompt", "image", "record_id", "image_id", "gt_boxes"}
    row = ds[0]
    assert (
        isinstance(row["image"], Image.Image) and row["image"].mode == "RGB" and row["image"].size == (20, 10)
    )
    assert row["gt_boxes"] == [[0, 0, 500, 500]] and ds[1]["gt_boxes"] == []
    assert row["record_id"] == "a" and row["image_id"] == 1
    assert ds[1]["image"].mode == "RGB"
    # TRL fills the image placeholder of our prompt with the row's image
    msgs = prepare_multimodal_messages(row["prompt"], images=[row["image"]])
    assert msgs[0]["content"][0]["image"] is row["image"]
    assert msgs[0]["content"][1] == {"type": "text", "text": "Find cat."}
    rows = list(ds)  # iteration also goes through the lazy transform
    assert isinstance(rows[1]["image"], Image.Image)


def test_sft_dataset(tmp_path):
    ds = build_sft_dataset(_records(tmp_path), FakeTask(), lambda r: FakeFrame(r.width, r.height))
    row = ds[1]
    assert row["completion"] == [
        {"role": "assistant", "content": "<think>x</think> <answer>No Objects</answer>"}
    ]
    assert "gt_boxes" not in ds.column_names and isinstance(row["image"], Image.Image)


def test_real_tasks_on_the_shapes_world(tmp_path):
    from vrft.boxes import Frame
    from vrft.data.coco import convert_coco
    from vrft.data.synthetic import synthesize
    from vrft.tasks import TASKS

    convert_coco(synthesize(tmp_path, 4, seed=0, size=64), negative_ratio=1.0, out=tmp_path / "det.jsonl")
    recs = load_records(tmp_path / "det.jsonl")
    ds = build_grpo_dataset(
        recs, TASKS["detection"], lambda r: Frame.for_image(r.width, r.height, "norm1000")
    )
    assert len(ds) == len(recs)
    for rec, row in zip(recs, ds):
        frame = Frame.for_image(rec.width, rec.height, "norm1000")
        assert row["gt_boxes"] == [frame.encode(b) for b in rec.boxes]
        assert f"'{rec.category}'" in row["prompt"][0]["content"][1]["text"]
        assert row["image"].size == (64, 64)
