"""The text corpus a tiny model's tokenizer is trained on.

The tokenizer of a tiny model is byte-level (any text encodes), but its merges are learned from what vrft
actually sends and expects: the Visual-RFT task prompts, the answer syntax, digits, and the words of the
synthetic shapes world. Frequent strings become single tokens, so prompts stay short and a tiny model
trains fast.
"""

from __future__ import annotations

SHAPES = (
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "cross",
    "heart",
    "diamond",
    "pentagon",
    "ellipse",
)
COLOURS = (
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray", "grey", "cyan",
    "magenta",
)  # fmt: skip
SIZE_WORDS = (
    "small",
    "large",
    "big",
    "tiny",
    "left",
    "right",
    "top",
    "bottom",
    "center",
    "middle",
    "upper",
    "lower",
)

# The paper's novel / few-shot categories and a handful of common ones (only to shape merges; any word encodes).
CATEGORIES = (
    "cat", "dog", "bus", "train", "car", "person", "bird", "horse", "mouse", "fork", "hot dog", "airplane",
    "suitcase", "parking meter", "sandwich", "hair drier", "toilet", "toaster", "snowboard", "frisbee", "bear",
    "fire hydrant", "stop sign", "bed", "cup", "bottle", "chair",
)  # fmt: skip

DETECTION_PROMPT = (
    "Detect all objects belonging to the category '{category}' in the image, and provide the bounding boxes "
    "(between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places). If no object "
    "belonging to the category '{category}' in the image, return 'No Objects'. Output the thinking process in "
    "<think> </think> and final answer in <answer> </answer> tags. The output answer format should be as follows:\n"
    "<think> ... </think> <answer>[{{'Position': [x1, y1, x2, y2], 'Confidence': number}}, ...]</answer>\n"
    "Please strictly follow the format."
)
CLASSIFICATION_PROMPT = (
    "This is an image containing a {object}. Please identify the {attribute} of the {object} based on the image. "
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags. The output "
    "answer format should be as follows:\n<think> ... </think> <answer>{attribute} name</answer>\n"
    "Please strictly follow the format."
)
GROUNDING_PROMPT = (
    "Output the bounding box in the image corresponding to the instruction: {instruction}. Output the thinking "
    "process in <think> </think> and the final answer in <answer> </answer> tags, following the format "
    "<think> thinking process </think> <answer>(x1,y1),(x2,y2)</answer>"
)
CLASSIFICATION_DOMAINS = (("shape", "shape"), ("plant", "species"), ("aircraft", "model"), ("car", "model"),
                          ("pet", "breed"), ("flower", "species"))  # fmt: skip


def default_corpus() -> list[str]:
    """Return the training texts of the tiny tokenizer (deterministic, ~a few hundred lines)."""
    texts: list[str] = []
    for category in (*SHAPES, *CATEGORIES):
        texts.append(DETECTION_PROMPT.format(category=category))
    for obj, attribute in CLASSIFICATION_DOMAINS:
        texts.append(CLASSIFICATION_PROMPT.format(object=obj, attribute=attribute))
    for i, shape in enumerate(SHAPES):
        colour = COLOURS[i % len(COLOURS)]
        where = SIZE_WORDS[i % len(SIZE_WORDS)]
        texts.append(GROUNDING_PROMPT.format(instruction=f"the {where} {colour} {shape}"))
        texts.append(
            f"Detect the {shape}. Detect the {colour} {shape}. What shape is this? A {colour} {shape}."
        )
    # Answer syntax, with numbers spread over 0..1000 so every digit and separator is common.
    for i in range(60):
        a, b, c, d = (37 * i) % 1000, (53 * i + 11) % 1000, (71 * i + 101) % 1001, (89 * i + 203) % 1001
        conf = f"{(i * 7) % 100 / 100:.2f}"
        shape = SHAPES[i % len(SHAPES)]
        colour = COLOURS[i % len(COLOURS)]
        texts.append(
            f"<think> The image shows a {colour} {shape} near the {SIZE_WORDS[i % len(SIZE_WORDS)]}. </think> "
            f"<answer>[{{'Position': [{a}, {b}, {c}, {d}], 'Confidence': {conf}}}]</answer>"
        )
        texts.append(f"<think> I see a {colour} {shape}. </think> <answer>({a},{b}),({c},{d})</answer>")
        texts.append(f"<think> It is a {shape}. </think> <answer>{shape}</answer>")
        texts.append(f"<answer>[{a}, {b}, {c}, {d}]</answer>")
    texts.append("<think> There is no such object. </think> <answer>No Objects</answer>")
    for colour in COLOURS:
        for shape in SHAPES:
            texts.append(f"Detect the {colour} {shape}. <answer>{colour} {shape}</answer>")
    # The chat roles as the template renders them ("<|im_start|>user\n...", "Assistant: ...").
    texts = (
        [f"{role}\n{t}" for t in texts for role in ("user", "assistant")]
        + [
            "system\nYou are a helpful assistant.",
        ]
        + ["User:<image>Detect the object.\nAssistant: <think>"] * 20
    )
    texts.append(" ".join(COLOURS) + " " + " ".join(SHAPES) + " " + " ".join(SIZE_WORDS))
    texts.append("0 1 2 3 4 5 6 7 8 9 0.5 0.25 1.00 [ ] ( ) { } , : ' \" . ? !")
    return texts
