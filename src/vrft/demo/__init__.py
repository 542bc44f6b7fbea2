"""The paper's experiments in miniature behind `vrft demo` (see docs/demo.md).

`run_demo(out_dir, settings)` starts from the shipped miniature base model (`vrft.demo.base`), draws
the synthetic shapes world, and runs (a) open-vocabulary detection, (b) few-shot detection and (c)
few-shot classification of novel shapes with SFT and Visual-RFT (the same budget in (a) and (b); in (c)
each method at its own tuned setting within that budget), over several seeds.
"""

from vrft.demo.run import run_demo
from vrft.demo.settings import QUICK, DemoSettings, load_settings

__all__ = ["QUICK", "DemoSettings", "load_settings", "run_demo"]
