"""Batched generation equals one-at-a-time generation (left padding done right); processor layouts."""

from __future__ import annotations

import pytest
from PIL import Image

from vrft.evaluate.runner import HFGenerator, Request, _trim


def test_trim_cuts_after_the_first_stop_string():
    assert (
        _trim("<think>a</think><answer>1</answer> extra", ("</answer>",))
        == "<think>a</think><answer>1</answer>"
    )
    assert _trim("no stop", ("</answer>",)) == "no stop"


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "smolvlm"])  # Qwen image grid; Idefics3 nested images
def test_batched_equals_one_at_a_time(arch):
    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    model, processor = load_model_and_processor(cached_tiny(arch))
    requests = [
        Request(Image.new("RGB", (120, 90), (200, 10, 10)), "Detect the cat.", 5),
        Request(
            Image.new("RGB", (64, 200), (0, 10, 200)),
            "Detect all objects belonging to the category 'dog'.",
            5,
        ),
        Request(Image.new("RGB", (100, 100), (9, 99, 9)), "hi", 3),
    ]
    batched = HFGenerator(model, processor, batch_size=3, progress=False).generate(requests)
    single = HFGenerator(model, processor, batch_size=1, progress=False).generate(requests)
    assert batched == single
    assert all(isinstance(t, str) for t in batched)


def test_rejects_right_padding_and_bad_batch_size():
    from vrft.errors import ConfigError, UserError
    from vrft.models.load import load_processor
    from vrft.models.tiny import cached_tiny

    processor = load_processor(cached_tiny("qwen2_5_vl"))
    with pytest.raises(UserError):
        HFGenerator(None, processor, batch_size=0)
    processor.tokenizer.padding_side = "right"
    with pytest.raises(ConfigError, match="LEFT padding"):
        HFGenerator(None, processor)


def test_load_image_sends_pil_images_through_the_one_reader(monkeypatch):
    """Issue 19 §2b (transparency): a PIL image given to generation is converted by vrft.inputs.open_image,
    as one read from a file, not by a second conversion of its own."""
    from PIL import Image

    import vrft.inputs
    from vrft.evaluate.runner import load_image

    seen = []
    real = vrft.inputs.open_image
    monkeypatch.setattr(vrft.inputs, "open_image", lambda src, *a, **k: seen.append(src) or real(src, *a, **k))
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(rgba).mode == "RGB" and seen == [rgba]
