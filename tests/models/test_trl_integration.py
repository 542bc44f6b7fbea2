"""Integration proof: a tiny model directory trains with TRL's GRPOTrainer (one step, CPU)."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from PIL import Image

from vrft.cli import main
from vrft.models import load_model_and_processor


def _distinct_reward(completions, **columns):
    """A reward that always differs within a group (so advantages are non-zero and weights move)."""
    assert "image" not in columns or columns["image"] is not None
    return [float(i) for i in range(len(completions))]


@pytest.mark.slow  # a TRL GRPO step (~1 s)
def test_one_grpo_step_on_cpu(tiny_dirs, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    model, processor = load_model_and_processor(tiny_dirs("qwen2_5_vl"), dtype="float32")
    prompt = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Detect the red circle."}]}
    ]
    images = [Image.new("RGB", (64 + 16 * i, 48), (40 * i, 100, 200)) for i in range(2)]
    dataset = Dataset.from_dict({"prompt": [prompt, prompt], "image": images})
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,  # never pick up an accelerator in the unit test
        bf16=False,  # TRL defaults bf16=True; on a CPU-only machine that is a ValueError
        report_to="none",
        max_completion_length=8,
        num_generations=2,
        per_device_train_batch_size=2,
        max_steps=1,
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-2,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=_distinct_reward,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["completions/mean_length"] > 0
    assert abs(log["reward"] - 0.5) < 1e-6  # mean of the [0, 1] rewards of each group
    assert torch.isfinite(torch.tensor(log["loss"]))
    moved = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert any("visual" in n for n in moved) and any("language_model" in n for n in moved)


def test_cli_builds_and_reports_errors(tmp_path, capsys):
    assert main(["tiny", "--arch", "qwen2_5_vl", "--out", str(tmp_path / "m"), "--layers", "1"]) == 0
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert capsys.readouterr().out.strip() == str(tmp_path / "m")
    assert main(["tiny", "--arch", "qwen2_5_vl", "--out", str(tmp_path / "x"), "--hidden-size", "30"]) == 2
    assert "vrft tiny: error: invalid tiny model settings" in capsys.readouterr().err
