"""The miniature Visual-RFT experiment behind `vrft demo` (see docs/demo.md).

`run_demo(out_dir, settings)` builds a synthetic shapes world, warm-starts a tiny Qwen2.5-VL on the base
classes, fine-tunes it on k-shot sets of novel classes with SFT and with Visual-RFT (same budget), and
evaluates every model on held-out novel images (COCO mAP).
"""

from vrft.demo.run import run_demo
from vrft.demo.settings import QUICK, DemoSettings, load_settings, warm_start_key

__all__ = ["QUICK", "DemoSettings", "load_settings", "run_demo", "warm_start_key"]
