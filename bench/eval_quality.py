"""--eval on the quality benchmark's data: the model against both baselines, timed.

Run after `python -m bench.quality` (600 training posts, 200 held out): scores the held-out
posts with `alt_i2v.py --eval --eval-dir`, as a user would, and prints one JSON object: the
machine (date, CPU, load), the command, its wall time and the headline numbers of summary.json.

    python -m bench.quality && python -m bench.eval_quality
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from alti2v.data.files import json_object
from bench.common import DEFAULT_WEIGHTS, REPOSITORY, describe_machine
from bench.quality import posts_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work", type=Path, default=Path("bench/results/quality"), help="a bench.quality --work"
    )
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="approach 3's VGG16")
    args = parser.parse_args()
    heldout = posts_of(args.work) / "heldout"
    command = [
        sys.executable, str(REPOSITORY / "alt_i2v.py"), "--eval", "--data-dir", str(args.work),
        "--eval-dir", str(heldout), "--weights", args.weights, "--threshold-rule", "f1", "--json",
        "--quiet",
    ]  # fmt: skip
    machine = describe_machine()  # its load average before the run
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.stderr.write(result.stderr)
        return result.returncode
    summary = json_object(result.stdout)

    def headline(name: str) -> dict:
        scores = summary[name]
        return {
            "map": scores["map"],
            "map_ci95": scores["map_ci95"],
            **{
                f"micro_f1_{rule}": scores["rules"][rule]["micro_f1"]
                for rule in ("constant", "f1", "mcut", "category")
            },
            "micro_f1_f1_ci95": scores["rules"]["f1"]["micro_f1_ci95"],
        }

    calibration = summary["model"]["calibration"]
    print(json.dumps({
        "machine": machine,
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "command": " ".join(command[1:]),
        "eval_wall_seconds": round(seconds, 1),
        "images": summary["model"]["images"],
        "fitting_images": summary["model"]["fitting_images"],
        "report_images": summary["model"]["report_images"],
        **{name: headline(name) for name in ("model", "frequency_prior", "approach3")},
        "ece": calibration["ece"],
        "ece_after_temperature": calibration["ece_after_temperature"],
        "temperature": calibration["fitted_temperature"],
        "temperature_saved": calibration["temperature_improves"],
        "rating": summary["model"]["rating"],
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
