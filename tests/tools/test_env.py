"""The built-in tools and the rollout environment: argument checks before pixels, budgets, counters."""

from __future__ import annotations

import inspect
import sys
import types

import pytest
from PIL import Image
from transformers.utils import get_json_schema

from vrft.boxes import Frame
from vrft.config import load_config
from vrft.errors import ConfigError
from vrft.tools import load_user_tool, name_problem, ops, parse_tool_list
from vrft.tools.env import ToolSettings, tool_environment
from vrft.tools.ops import ToolCallError

BUDGET = 56 * 56


def _env(
    names=("zoom_in", "rotate", "adjust", "flip"), max_calls=3, max_images=2, convention="norm1000", user=None
):
    def frame_of(w, h):
        return Frame.for_image(w, h, convention, min_pixels=56 * 56, max_pixels=112 * 112)

    env = tool_environment(ToolSettings(tuple(names), max_calls, max_images, BUDGET, frame_of, user or {}))()
    image = Image.new("RGB", (224, 112), "black")
    image.paste((255, 0, 0), (112, 0, 224, 112))  # right half red
    env.reset(image=image, prompt=[], record_id="r0")
    return env


def _image(out):
    return next(b["image"] for b in out if b.get("type") == "image")


def test_the_environment_exposes_exactly_the_configured_tools_with_schemas():
    env = _env(names=("zoom_in", "flip"))
    public = [
        n for n, _ in inspect.getmembers(type(env), predicate=inspect.isfunction) if not n.startswith("_")
    ]
    assert sorted(public) == ["flip", "reset", "zoom_in"]
    schema = get_json_schema(env.zoom_in)["function"]
    assert schema["name"] == "zoom_in" and schema["parameters"]["required"] == ["bbox_2d"]
    assert "0..1000" in schema["parameters"]["properties"]["bbox_2d"]["description"]


def test_zoom_in_crops_in_the_model_coordinates_and_fills_the_pixel_budget():
    env = _env()
    out = env.zoom_in([500, 0, 1000, 1000])  # the right half: red
    img = _image(out)
    assert img.width * img.height <= BUDGET and img.width * img.height > 0.9 * BUDGET
    assert img.getpixel((img.width // 2, img.height // 2)) == (255, 0, 0)
    assert "[500, 0, 1000, 1000] of the original image" in out[1]["text"]
    # the next zoom is in the coordinates of the image the model now sees (the crop): its left half
    out = env.zoom_in([0, 0, 500, 1000])
    assert "[500, 0, 750, 1000] of the original image" in out[1]["text"]
    assert env.state.calls == 2 and env.state.errors == 0 and env.state.images == 2
    # each zoom's region in pixels of the original (224 x 112) image, for the zoom metrics
    assert env.regions == [[112.0, 0.0, 224.0, 112.0], [112.0, 0.0, 168.0, 112.0]]
    env.reset(image=Image.new("RGB", (224, 112)))
    assert env.regions == []


def test_zoom_in_resized_pixels_convention_uses_the_processor_resized_size():
    env = _env(convention="resized_pixels")
    ex, ey = env.frame.extent
    assert (ex, ey) != (1000.0, 1000.0)
    img = _image(env.zoom_in([ex / 2, 0, ex, ey]))
    assert img.getpixel((img.width // 2, img.height // 2)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.zoom_in([0, 0, 1001, 500]), "outside the image"),
        (lambda e: e.zoom_in([-1, 0, 10, 10]), "outside the image"),
        (lambda e: e.zoom_in([600, 0, 500, 100]), "inverted or empty"),
        (lambda e: e.zoom_in([10, 10, 10, 20]), "inverted or empty"),
        (lambda e: e.zoom_in([0, 0, 10]), "list of 4 numbers"),
        (lambda e: e.zoom_in("0,0,10,10"), "list of 4 numbers"),
        (lambda e: e.zoom_in([0, 0, "a", 10]), "must be a number"),
        (lambda e: e.zoom_in([0, 0, float("nan"), 10]), "finite"),
        (lambda e: e.zoom_in([0, 0, 1000, 1]), "smaller than one pixel"),
        (lambda e: e.zoom_in([0, 0, 1000, 15]), "too thin"),
        (lambda e: e.zoom_in([0, 0, 1000, 1000]), "zoom on a smaller part"),
        (lambda e: e.zoom_in([20, 0, 1000, 950]), "zoom on a smaller part"),
        (lambda e: e.rotate(45), "90, 180, 270"),
        (lambda e: e.rotate(True), "must be a number"),
        (lambda e: e.adjust(10, 1), "brightness must be between"),
        (lambda e: e.adjust(1, 0), "contrast must be between"),
        (lambda e: e.flip("diagonal"), "horizontal, vertical"),
    ],
)
def test_a_bad_call_is_refused_before_any_pixel_and_counted(call, message, monkeypatch):
    env = _env()
    touched = []
    monkeypatch.setattr(Image.Image, "resize", lambda *a, **k: touched.append(1))
    monkeypatch.setattr(Image.Image, "transpose", lambda *a, **k: touched.append(1))
    with pytest.raises(ToolCallError, match=message):
        call(env)
    assert touched == []
    assert env.state.calls == 1 and env.state.errors == 1 and env.state.images == 0


def test_call_and_image_budgets_refuse_and_count():
    env = _env(max_calls=3, max_images=1)
    env.flip("horizontal")
    with pytest.raises(ToolCallError, match="image budget spent"):
        env.rotate(90)
    env2 = _env(max_calls=1, max_images=4)
    env2.rotate(180)
    with pytest.raises(ToolCallError, match="too many tool calls"):
        env2.rotate(90)
    assert (env.state.calls, env.state.errors, env.state.succeeded) == (2, 1, 1)
    assert (env2.state.calls, env2.state.errors) == (2, 1)
    # a new rollout starts from zero, on its own image
    env2.reset(image=Image.new("RGB", (56, 56)))
    assert env2.state.calls == 0 and env2.image.size == (56, 56)


def test_rotate_flip_adjust_stay_within_the_budget():
    env = _env(max_calls=5, max_images=5)
    assert _image(env.rotate(90)).size[0] * _image(env.rotate(90)).size[1] <= BUDGET
    env = _env()
    big = Image.new("RGB", (400, 300), "white")
    env.reset(image=big)
    for out in (env.flip("vertical"), env.adjust(2.0, 0.5)):
        assert _image(out).width * _image(out).height <= BUDGET


def test_fit_budget_is_bounded_for_any_shape():
    for w, h in [(1, 1), (1, 500), (3000, 2), (7, 13), (1000, 1000)]:
        fw, fh = ops.fit_budget(w, h, 3136)
        assert 1 <= fw and 1 <= fh and fw * fh <= 3136


def _register(module_name: str, **functions):
    module = types.ModuleType(module_name)
    for name, fn in functions.items():
        setattr(module, name, fn)
    sys.modules[module_name] = module
    return module


def test_user_tools_follow_trls_convention_and_get_the_image(monkeypatch):
    def crop_center(image: Image.Image, fraction: float) -> list:
        """Crop the centre of the image.

        Args:
            fraction: Share of each side kept, in (0, 1].
        """
        w, h = image.size
        big = image.resize((w * 10, h * 10))  # larger than the budget: vrft shrinks it
        return [{"type": "image", "image": big}, {"type": "text", "text": f"kept {fraction}"}]

    def undocumented(x):
        return x

    _register("vrft_test_user_tools", crop_center=crop_center, undocumented=undocumented)
    fn = load_user_tool("vrft_test_user_tools:crop_center")
    env = _env(
        names=("zoom_in", "vrft_test_user_tools:crop_center"), user={"vrft_test_user_tools:crop_center": fn}
    )
    schema = get_json_schema(env.crop_center)["function"]
    assert list(schema["parameters"]["properties"]) == ["fraction"]  # the image is not the model's argument
    out = env.crop_center(fraction=0.5)
    assert _image(out).width * _image(out).height <= BUDGET and out[1]["text"] == "kept 0.5"
    assert env.state.images == 1
    with pytest.raises(ToolCallError, match="crop_center failed"):
        env.crop_center(wrong=1)
    with pytest.raises(ConfigError, match="type hint"):
        load_user_tool("vrft_test_user_tools:undocumented")
    with pytest.raises(ConfigError, match="cannot import"):
        load_user_tool("vrft_test_no_such_module:f")


def test_tool_names_and_the_config_section():
    assert name_problem("zoom_in") is None and name_problem("pkg.mod:fn") is None
    assert "did you mean 'zoom_in'" in name_problem("zoom")
    assert parse_tool_list("zoom_in, rotate,") == ["zoom_in", "rotate"]
    with pytest.raises(ConfigError, match="unknown tool"):
        parse_tool_list("zoom_in,crop")
    base = {"model": {"path": "m"}, "data": {"train": "t.jsonl"}}
    cfg = load_config({**base, "tools": {"enabled": True, "names": ["zoom_in", "rotate"], "max_calls": 2}})
    assert cfg.tools.enabled and cfg.tools.max_pixels is None
    for bad, what in [
        ({"enabled": True, "nmes": ["zoom_in"]}, "nmes"),
        ({"enabled": True, "names": ["zoom"]}, "did you mean 'zoom_in'"),
        ({"enabled": True, "names": []}, "no tool is listed"),
        ({"max_calls": 0}, "max_calls"),
        ({"names": ["flip", "flip"]}, "listed twice"),
        ({"enabled": True, "max_pixels": 1000}, r"tools.max_pixels.*below model.min_pixels \(3136\)"),
    ]:
        with pytest.raises(ConfigError, match=what):
            load_config({**base, "tools": bad})


def test_the_contract_remembers_tools_and_refuses_a_bad_tools_field(tmp_path):
    import json

    from vrft.errors import UserError
    from vrft.models.contract import ModelContract, read_contract, write_contract

    tools = {"names": ["zoom_in", "pkg.mod:fn"], "max_calls": 3, "max_images": 2, "max_pixels": 12544}
    write_contract(tmp_path, ModelContract("grounding", None, "think", "norm1000", 3136, 12544, tools=tools))
    assert read_contract(tmp_path).tools == tools
    for bad in ({"names": []}, {**tools, "names": ["zoom"]}, {**tools, "max_calls": 0}, [1]):
        obj = json.loads((tmp_path / "vrft.json").read_text())
        obj["tools"] = bad
        (tmp_path / "vrft.json").write_text(json.dumps(obj))
        with pytest.raises(UserError, match="tools: .* is not null or a tools object"):
            read_contract(tmp_path)


def test_the_built_in_tools_touch_no_file(monkeypatch):
    import builtins
    import io
    import os

    env = _env(max_calls=8, max_images=8)

    def refuse(*args, **kwargs):
        raise AssertionError(f"a tool touched a file: {args[:1]}")

    for owner, name in [
        (builtins, "open"),
        (io, "open"),
        (os, "open"),
        (Image, "open"),
        (Image.Image, "save"),
    ]:
        monkeypatch.setattr(owner, name, refuse)
    outs = [env.zoom_in([100, 100, 600, 700]), env.rotate(270), env.adjust(1.5, 0.8), env.flip("vertical")]
    assert all(_image(o).width * _image(o).height <= BUDGET for o in outs)
    assert (env.state.calls, env.state.errors, env.state.images) == (4, 0, 4)
