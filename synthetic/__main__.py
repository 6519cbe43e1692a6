"""`python -m synthetic --out DIR --count N`: draw posts into a folder."""

import sys

from synthetic import main

sys.exit(main())
