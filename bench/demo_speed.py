"""`make demo` as a slower machine runs it: the demo from an empty folder under an emulated CPU.

ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN (TensorFlow's conv and matmul kernels) off AVX-512, as on
a 2-core AVX2 laptop (bench/measured/onednn-max-cpu-isa.txt shows it is honoured); `--cores 1`
also pins the run to one core with taskset. Writes the demo's own output, with the machine and
the wall time, to bench/measured/demo-<variant>-<date>.txt.

    python -m bench.demo_speed --isa AVX2 --cores 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_WEIGHTS, markdown_header, write_measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isa", default="AVX2", help="ONEDNN_MAX_CPU_ISA ('' for the machine's)")
    parser.add_argument("--cores", type=int, default=0, help="pin to this many cores (0: all)")
    parser.add_argument("--work", type=Path, default=Path("bench/results/demo"))
    parser.add_argument("demo_args", nargs="*", help="more arguments for synthetic.demo (after --)")
    args = parser.parse_args()
    environment = dict(os.environ, ONEDNN_MAX_CPU_ISA=args.isa)
    variant = f"{args.isa or 'native'}-{args.cores or os.cpu_count()}core"
    command = [sys.executable, "-m", "synthetic.demo", "--pipeline", "--data-dir", str(args.work)]
    command += ["--weights", DEFAULT_WEIGHTS]
    command += args.demo_args
    if args.cores:
        command = ["taskset", "-c", ",".join(map(str, range(args.cores))), *command]
    shutil.rmtree(args.work, ignore_errors=True)
    header = markdown_header(f"make demo, {variant}", " ".join(command))
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - started
    load = [round(value, 2) for value in os.getloadavg()]
    text = (
        f"{header}exit {result.returncode}; wall {wall:.0f} s; load average after {load}\n\n"
        f"```\n{result.stdout}```\n"
    )
    write_measured(text, f"demo-{variant}", ".txt")
    print(text)
    if result.returncode:
        print(result.stderr[-3000:], file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
