"""One rollout's tools: TRL's `environment_factory` protocol (a class with `reset` and tool methods).

TRL 1.16's `GRPOTrainer(environment_factory=...)` makes one instance per rollout (pooled, `reset` per
prompt with the dataset row as keyword arguments) and exposes every public method of the CLASS as a
tool (name, type hints and docstring -> the JSON schema in the prompt). `tool_environment(settings)`
builds that class for a configuration: the built-in tools asked for (`vrft.tools.ops`) and the user's
tools, nothing else, so the prompt lists exactly the configured tools.

The instance holds the image the model currently sees (the record's image, then each tool's output),
its `vrft.boxes.Frame`, and the counters of the rollout (`ToolState`). Every refusal raises
`ToolCallError` (TRL shows the model ``{"error": "<message>"}`` and counts a failure) and is counted
here; the checks run in this order, before any pixel is touched: calls left (`max_calls`), images left
(`max_images`, built-in tools), the arguments.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from vrft.tools import ops
from vrft.tools.ops import ToolCallError

FrameOf = Callable[[int, int], Any]
"""(width, height) -> `vrft.boxes.Frame` of an image of that size for the model being trained."""


@dataclass(frozen=True)
class ToolSettings:
    """What the environment needs: tool names, budgets, the coordinate frame and the user functions."""

    names: tuple[str, ...]
    max_calls: int
    max_images: int
    max_pixels: int
    frame_of: FrameOf
    user: dict[str, Callable[..., Any]] = field(default_factory=dict)


@dataclass
class ToolState:
    """The counters of one rollout: calls made, refused, images returned."""

    calls: int = 0
    errors: int = 0
    images: int = 0

    @property
    def succeeded(self) -> int:
        return self.calls - self.errors


# --------------------------------------------------------------------------------------------- base
class ToolEnvironment:
    """Base of the built environment classes; public methods are added by `tool_environment` only."""

    _settings: ToolSettings

    def __init__(self) -> None:
        self.state = ToolState()
        self.original: Image.Image | None = None
        self.image: Image.Image | None = None
        self.frame: Any = None
        self.view: tuple[float, float, float, float] | None = (0.0, 0.0, 1.0, 1.0)
        self.regions: list[list[float]] = []  # each zoom_in's region, in pixels of the original image

    def reset(self, **row: Any) -> None:
        """Start a rollout on the dataset row's image (`image`, or the first of `images`)."""
        image = row.get("image")
        if image is None and row.get("images"):
            image = row["images"][0]
        self.state = ToolState()
        self.regions = []
        self.original = image.convert("RGB") if isinstance(image, Image.Image) else None
        self.image = self.original
        self.frame = self._settings.frame_of(*self.image.size) if self.image is not None else None
        self.view = (0.0, 0.0, 1.0, 1.0)
        return None  # the prompt is left as it is

    # ------------------------------------------------------------------------------------ machinery
    def _call(self, name: str, run: Callable[[], Any], *, makes_image: bool) -> Any:
        s = self._settings
        self.state.calls += 1
        try:
            if self.state.calls > s.max_calls:
                raise ToolCallError(
                    f"too many tool calls: at most {s.max_calls} per answer; give your answer now"
                )
            if makes_image and self.state.images >= s.max_images:
                raise ToolCallError(
                    f"image budget spent: at most {s.max_images} tool images per answer; give your answer now"
                )
            if makes_image and self.image is None:
                raise ToolCallError(f"{name}: there is no image to work on")
            return run()
        except ToolCallError:
            self.state.errors += 1
            raise
        except Exception as err:  # a bug or a user tool's failure: the model reads it, the step goes on
            self.state.errors += 1
            raise ToolCallError(f"{name} failed: {err}") from err

    def _show(self, image: Image.Image, note: str, view: tuple[float, float, float, float] | None) -> list:
        """Make `image` the current one; the content blocks TRL puts in the tool message."""
        self.state.images += 1
        self.image = image
        self.frame = self._settings.frame_of(*image.size)
        self.view = view
        return [{"type": "image", "image": image}, {"type": "text", "text": note}]

    def _in_original(self, box_px: tuple[float, float, float, float]) -> list[int] | None:
        """A box in pixels of the current image -> the model's coordinates of the original image."""
        if self.view is None or self.original is None:
            return None
        ox, oy, sx, sy = self.view
        x1, y1, x2, y2 = box_px
        orig = [ox + sx * x1, oy + sy * y1, ox + sx * x2, oy + sy * y2]
        return self._settings.frame_of(*self.original.size).encode(orig)

    def _scaled_view(self, old: tuple[int, int], new: tuple[int, int]):
        if self.view is None:
            return None
        ox, oy, sx, sy = self.view
        return (ox, oy, sx * old[0] / new[0], sy * old[1] / new[1])

    # ------------------------------------------------------------------------------------- built-ins
    def _zoom_in(self, bbox_2d: Any) -> list:
        def run():
            box_model = ops.check_box(bbox_2d, self.frame.extent)
            ops.check_zoom_region(box_model, self.frame.extent)
            box_px = self.frame.decode(box_model)
            out = ops.zoom(self.image, box_px, self._settings.max_pixels)
            where = self._in_original(tuple(box_px))
            view = None
            if self.view is not None:
                ox, oy, sx, sy = self.view
                x1, y1, x2, y2 = box_px
                view = (ox + sx * x1, oy + sy * y1, sx * (x2 - x1) / out.width, sy * (y2 - y1) / out.height)
                self.regions.append([round(v, 2) for v in (ox + sx * x1, oy + sy * y1, ox + sx * x2, oy + sy * y2)])
            note = f"zoom_in: the region {list(bbox_2d)} enlarged to {out.width}x{out.height} pixels"
            if where is not None:
                note += (
                    f"; it is the region {where} of the original image (answer in the original's coordinates)"
                )
            return self._show(out, note, view)

        return self._call("zoom_in", run, makes_image=True)

    def _rotate(self, degrees: Any) -> list:
        def run():
            d = ops.check_degrees(degrees)
            out = ops.rotate(self.image, d, self._settings.max_pixels)
            note = f"rotate: the image turned {d} degrees counter-clockwise ({out.width}x{out.height} pixels)"
            return self._show(out, note, None)

        return self._call("rotate", run, makes_image=True)

    def _adjust(self, brightness: Any, contrast: Any) -> list:
        def run():
            b, c = ops.check_factors(brightness, contrast)
            before = self.image.size
            out = ops.adjust(self.image, b, c, self._settings.max_pixels)
            note = f"adjust: brightness x{b:g}, contrast x{c:g} ({out.width}x{out.height} pixels)"
            return self._show(out, note, self._scaled_view(before, out.size))

        return self._call("adjust", run, makes_image=True)

    def _flip(self, direction: Any) -> list:
        def run():
            d = ops.check_direction(direction)
            out = ops.flip(self.image, d, self._settings.max_pixels)
            return self._show(out, f"flip: the image mirrored {d}ly ({out.width}x{out.height} pixels)", None)

        return self._call("flip", run, makes_image=True)

    def _user(self, name: str, fn: Callable[..., Any], wants_image: bool, kwargs: dict[str, Any]) -> Any:
        def run():
            out = fn(self.image, **kwargs) if wants_image else fn(**kwargs)
            return self._user_output(name, out)

        return self._call(name, run, makes_image=False)

    def _user_output(self, name: str, out: Any) -> Any:
        """A user tool's result with each image capped by the budget and counted against max_images."""
        if isinstance(out, Image.Image):
            out = [{"type": "image", "image": out}]
        if not isinstance(out, list):
            return out
        blocks = []
        for block in out:
            if isinstance(block, dict) and isinstance(block.get("image"), Image.Image):
                if self.state.images >= self._settings.max_images:
                    raise ToolCallError(
                        f"image budget spent: at most {self._settings.max_images} tool images per answer"
                    )
                image = block["image"].convert("RGB")
                size = ops.shrink_to_budget(image.width, image.height, self._settings.max_pixels)
                if size != image.size:
                    image = image.resize(size, Image.Resampling.BICUBIC)
                self.state.images += 1
                self.image, self.frame, self.view = image, self._settings.frame_of(*size), None
                block = {"type": "image", "image": image}
            blocks.append(block)
        return blocks


# ----------------------------------------------------------------------------------- tool methods
def _coordinates_help(frame_of: FrameOf) -> str:
    convention = getattr(frame_of(1000, 1000), "convention", "pixels")
    return {
        "norm1000": "integers 0..1000 of the image you currently see (0 = left/top, 1000 = right/bottom)",
        "resized_pixels": "pixels of the image you currently see, as you see it",
        "pixels": "pixels of the image you currently see",
    }.get(convention, "pixels of the image you currently see")


def _builtin_methods(frame_of: FrameOf) -> dict[str, Callable[..., Any]]:
    """The built-in tools as methods with TRL's tool convention (type hints + docstring)."""
    where = _coordinates_help(frame_of)

    def zoom_in(self, bbox_2d: list[int]) -> list:
        return self._zoom_in(bbox_2d)

    zoom_in.__doc__ = f"""Zoom in: crop a region of the image you currently see and show it enlarged.

        Args:
            bbox_2d: The region [x1, y1, x2, y2] to enlarge, in {where}.
        """

    def rotate(self, degrees: int) -> list:
        """Rotate the image you currently see counter-clockwise.

        Args:
            degrees: 90, 180 or 270.
        """
        return self._rotate(degrees)

    def adjust(self, brightness: float, contrast: float) -> list:
        """Change the brightness and contrast of the image you currently see.

        Args:
            brightness: Brightness factor between 0.25 and 4 (1 keeps it).
            contrast: Contrast factor between 0.25 and 4 (1 keeps it).
        """
        return self._adjust(brightness, contrast)

    def flip(self, direction: str) -> list:
        """Mirror the image you currently see.

        Args:
            direction: "horizontal" (left-right) or "vertical" (top-bottom).
        """
        return self._flip(direction)

    return {"zoom_in": zoom_in, "rotate": rotate, "adjust": adjust, "flip": flip}


def user_method(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A user function as an environment method with the same name, docstring and typed signature.

    A first parameter named ``image`` receives the image the model currently sees and is hidden from
    the model (it is not in the tool's schema).
    """
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    params = list(sig.parameters.values())
    wants_image = bool(params) and params[0].name == "image"
    shown = params[1:] if wants_image else params

    @functools.wraps(fn)
    def method(self, **kwargs):
        return self._user(name, fn, wants_image, kwargs)

    del method.__wrapped__  # the schema comes from __signature__ below, not from fn (which may take `image`)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = sig.replace(parameters=[self_param, *shown])
    method.__annotations__ = {p.name: hints[p.name] for p in shown if p.name in hints}
    if "return" in hints:
        method.__annotations__["return"] = hints["return"]
    method.__name__ = method.__qualname__ = name
    return method


def tool_environment(settings: ToolSettings) -> type[ToolEnvironment]:
    """The environment class of a configuration: `environment_factory` for `GRPOTrainer` (call it for
    one instance). Its public methods are exactly the configured tools, in the configured order."""
    builtins = _builtin_methods(settings.frame_of)
    members: dict[str, Any] = {"_settings": settings}
    for name in settings.names:
        if name in builtins:
            members[name] = builtins[name]
        else:
            fn = settings.user[name]
            members[fn.__name__] = user_method(fn.__name__, fn)
    return type("VrftTools", (ToolEnvironment,), members)
