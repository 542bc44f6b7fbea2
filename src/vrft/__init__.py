"""vrft: Visual Reinforcement Fine-Tuning for Hugging Face vision-language models."""

__version__ = "0.1.0"
