"""Fetch the Python wheels a GPU machine needs to run vrft (and benchmarks/gpu_check.py) offline.

The GPU machine this was written for (docs/speed.md, "Running the GPU check") has Python 3.12 (x86_64,
manylinux) with torch, torchvision, accelerate, peft, tokenizers, safetensors, huggingface_hub, numpy,
pandas, pyarrow, pillow, pyyaml, scipy, matplotlib and tqdm, but no registry access. WHEELS lists what it
lacks, pinned to the versions vrft is tested with here (transformers and peft too: the machine's own are
other versions, and the speed-up hooks check transformers' keyword names). Pure-Python and manylinux
wheels only, no dependencies resolved (each needed one is listed):

    python benchmarks/fetch_gpu_wheels.py            # -> .whl/ (git-ignored), prints the size (<= 64 MB)
    python benchmarks/fetch_gpu_wheels.py --list     # just the list

Install there: `python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl`
and run with `PYTHONPATH=/tmp/site:$PWD/src` (the carried versions shadow the machine's).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 64

# name==version: what the machine lacks (or has in another version), and why
WHEELS = {
    "trl==1.16.0": "GRPOTrainer / SFTTrainer",
    "transformers==5.24.0": "the version vrft is tested with (the machine has 5.17)",
    "peft==0.21.2": "LoRA, the version tested here",
    "datasets==5.2.0": "trl's datasets",
    "dill==0.4.1": "datasets",
    "multiprocess==0.70.19": "datasets",
    "pycocotools==2.0.11": "COCO metrics",
    "pydantic==2.14.4": "vrft's typed config",
    "pydantic-core==2.50.5": "pydantic",
    "annotated-types==0.8.0": "pydantic",
    "typing-inspection==0.4.5": "pydantic",
    "num2words==0.5.14": "vrft dependency (number words)",
    "regex==2026.11.19": "transformers 5.24 needs regex>=2025.10.22 (the machine's version is not known)",
}
# Not fetched by default (large): the machine has pyarrow, version unknown; datasets 5.2 needs >= 21.
# Add it with --extra pyarrow==26.0.1 (about 42 MB) if `pip show pyarrow` there says older.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")  # fmt: skip


def download(spec: str, dest: Path, python: str) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp", "-d", str(dest), spec]  # fmt: skip
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=ROOT / ".whl", help="folder for the wheels (default .whl/)")
    ap.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    ap.add_argument("--list", action="store_true", help="print the list and stop")
    ap.add_argument(
        "--extra", action="append", default=[], help="another name==version to fetch (repeatable)"
    )
    args = ap.parse_args(argv)
    if args.list:
        for spec, why in WHEELS.items():
            print(f"{spec:32} {why}")
        return 0
    args.dest.mkdir(parents=True, exist_ok=True)
    specs = [*WHEELS, *args.extra]
    for spec in specs:
        download(spec, args.dest, args.python_version)
    names = {spec.split("==")[0].replace("-", "_").lower() for spec in specs}
    stale = [w for w in args.dest.glob("*.whl") if w.name.split("-")[0].lower() not in names]
    for w in stale:  # one version of each package only: two stop the whole install
        w.unlink()
    wheels = sorted(args.dest.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    for w in wheels:
        print(f"{w.stat().st_size / 2**20:7.2f} MB  {w.name}")
    print(f"{len(wheels)} wheels, {size:.1f} MB in {args.dest}")
    if size > LIMIT_MB:
        print(
            f"fetch_gpu_wheels: {size:.1f} MB is over the {LIMIT_MB} MB that travels with the checkout",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
