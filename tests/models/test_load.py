"""Loading: local directories only, left padding enforced, clear errors, conventions and frames per family."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from PIL import Image

from vrft.boxes import smart_resize
from vrft.errors import ConfigError
from vrft.models import (
    FAMILIES,
    check_processor,
    convention_for,
    frame_for,
    load_model_and_processor,
    load_processor,
    patch_factor,
    pixel_budget,
)


def test_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="model directory not found.*local"):
        load_model_and_processor(tmp_path / "nope")


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        load_model_and_processor(tmp_path)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        load_model_and_processor(tmp_path / "file.bin")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_model_and_processor(tmp_path)


def test_model_dir_without_weights(tmp_path, tiny_dirs):
    src = tiny_dirs("qwen2_5_vl")
    for p in src.iterdir():
        if p.name != "model.safetensors":
            (tmp_path / p.name).write_bytes(p.read_bytes())
    with pytest.raises(ConfigError, match="cannot load an image-text model"):
        load_model_and_processor(tmp_path)


def test_bad_dtype(tiny_dirs):
    with pytest.raises(ConfigError, match="dtype"):
        load_model_and_processor(tiny_dirs("qwen2_5_vl"), dtype="float8")


def test_right_padding_processor_is_refused(tiny_dirs):
    processor = load_processor(tiny_dirs("qwen2_5_vl"))
    check_processor(processor)  # left: fine
    processor.tokenizer.padding_side = "right"
    with pytest.raises(ConfigError, match="pads on the 'right'.*LEFT.*padding_side = 'left'"):
        check_processor(processor)
    with pytest.raises(ConfigError, match="pads on the 'right'"):
        check_processor(processor.tokenizer)  # a bare tokenizer is checked too


def test_loader_forces_left_even_if_saved_right(tmp_path, tiny_dirs):
    import shutil

    shutil.copytree(tiny_dirs("qwen2_5_vl"), tmp_path / "m")
    processor = load_processor(tmp_path / "m")
    processor.tokenizer.padding_side = "right"
    processor.save_pretrained(tmp_path / "m")
    model, processor = load_model_and_processor(tmp_path / "m", dtype="bfloat16")
    assert processor.tokenizer.padding_side == "left"
    assert str(model.dtype) == "torch.bfloat16"


@pytest.mark.parametrize(
    ("model_type", "convention"),
    [("qwen2_vl", "norm1000"), ("qwen2_5_vl", "resized_pixels"), ("qwen3_vl", "norm1000"),
     ("qwen3_vl_moe", "norm1000")],
)  # fmt: skip
def test_convention_by_family(model_type, convention):
    assert convention_for(SimpleNamespace(model_type=model_type)) == convention
    assert convention_for({"model_type": model_type}) == convention
    assert convention_for(model_type) == convention
    assert convention_for(model_type, "auto") == convention
    assert convention_for(model_type, "pixels") == "pixels"  # the user's setting wins


@pytest.mark.parametrize("model_type", ["llava", "smolvlm", None])
def test_unknown_family_asks_for_the_convention(model_type):
    with pytest.raises(ConfigError, match="model.coordinate_convention"):
        convention_for(SimpleNamespace(model_type=model_type))
    assert convention_for(model_type, "norm1000") == "norm1000"
    with pytest.raises(ConfigError, match="unknown convention"):
        convention_for(model_type, "percent")


def test_convention_of_loaded_tiny_models(tiny_dirs):
    for arch in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        config = json.loads((tiny_dirs(arch) / "config.json").read_text())
        assert convention_for(config) == FAMILIES[arch].convention


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_patch_factor_read_from_the_processor_matches_families(tiny_dirs, arch):
    processor = load_processor(tiny_dirs(arch))
    assert patch_factor(processor) == FAMILIES[arch].patch_factor
    side = 112 if arch != "qwen3_vl" else 128
    assert pixel_budget(processor) == (side * side, side * side)


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("size", [(640, 427), (100, 300), (37, 1000), (56, 56)])
def test_frame_for_matches_what_the_processor_feeds(tiny_dirs, arch, size):
    processor = load_processor(tiny_dirs(arch), min_pixels=3136, max_pixels=200_704)
    assert pixel_budget(processor) == (3136, 200_704)
    frame = frame_for(size[0], size[1], "resized_pixels", processor)
    grid = processor.image_processor(images=[Image.new("RGB", size)], return_tensors="pt")["image_grid_thw"][
        0
    ]
    patch = processor.image_processor.patch_size
    assert (frame.resized_height, frame.resized_width) == (int(grid[1]) * patch, int(grid[2]) * patch)
    assert (frame.resized_height, frame.resized_width) == smart_resize(
        size[1], size[0], patch * 2, 3136, 200_704
    )
    assert frame_for(size[0], size[1], "norm1000", processor).extent == (1000.0, 1000.0)


def test_resized_pixels_needs_a_qwen_processor(tiny_dirs):
    processor = load_processor(tiny_dirs("smolvlm"))
    assert patch_factor(processor) is None
    with pytest.raises(ConfigError, match="resized_pixels"):
        frame_for(100, 100, "resized_pixels", processor)


def test_pixel_budget_is_ignored_where_it_does_not_apply(tiny_dirs, caplog):
    processor = load_processor(tiny_dirs("smolvlm"), min_pixels=3136, max_pixels=401408)
    assert processor.image_processor.size == {"longest_edge": 128}
    assert "do not apply" in caplog.text
    with pytest.raises(ConfigError, match="larger than max_pixels"):
        load_processor(tiny_dirs("qwen2_5_vl"), min_pixels=5000, max_pixels=4000)
