"""The command line, a layer of its own: argparse, stdout and progress bars live here, one module
per stage (its flags, their checks, its summary), over stages that return their results.

`alt_i2v.py` calls `main`; `danbooru_datasetgenerator.py` calls `alti2v.cli.scrape.main`.
Importing this package imports no TensorFlow or Keras: each stage is imported when it runs.
"""

from alti2v.cli.main import main, parse_args

__all__ = ["main", "parse_args"]
