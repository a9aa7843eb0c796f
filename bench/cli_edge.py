"""How fast the command line refuses a misspelt recipe key, and what it prints.

What is measured:
    ``kerasnn train recipes/digits_mlp.yaml --set model.hiden=[64]`` run ``--repeats`` times as
    a fresh process (``python -m kerasnn``, the environment as given, no TF_CPP_MIN_LOG_LEVEL
    added), wall time from start to exit. The edge checks a recipe's keys and kerasnn's own
    names before TensorFlow is imported, so the refusal should take well under 3 s and print
    exactly one line (exit status 2). For contrast the same command with a name only Keras can
    judge (``--set model.activation=rleu``) is timed once: it is refused after TensorFlow loads.
    Nothing is asserted; one JSON object is printed (median and every time, the exit codes,
    the lines printed).

How to run (from the repository root):
    /work/venv/bin/python bench/cli_edge.py              # 5 repeats, ~5 s + one TF start-up
    /work/venv/bin/python bench/cli_edge.py --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = str(ROOT / "recipes" / "digits_mlp.yaml")


def _run(*sets: str) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kerasnn", "train", RECIPE, *sets],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "exit": proc.returncode,
        "stderr_lines": proc.stderr.splitlines(),
        "stdout_lines": proc.stdout.splitlines(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    typo = [_run("--set", "model.hiden=[64]") for _ in range(args.repeats)]
    keras_name = _run("--set", "model.activation=rleu")
    times = [r["seconds"] for r in typo]
    print(
        json.dumps(
            {
                "command": "kerasnn train recipes/digits_mlp.yaml --set model.hiden=[64]",
                "typo_refusal_seconds_median": statistics.median(times),
                "typo_refusal_seconds": times,
                "typo_exit_codes": sorted({r["exit"] for r in typo}),
                "typo_output": typo[0]["stderr_lines"] + typo[0]["stdout_lines"],
                "keras_name_refusal_seconds": keras_name["seconds"],
                "keras_name_exit": keras_name["exit"],
                "keras_name_output": keras_name["stderr_lines"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
