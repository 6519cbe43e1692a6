#!/usr/bin/env python3
"""alternative illustration2vec: build a tag vocabulary, pack a dataset, train VGG16, tag images.

`python alt_i2v.py --help` lists the modes; the command line is alti2v.cli.
"""

import sys

from alti2v.cli import main

if __name__ == "__main__":
    sys.exit(main())
