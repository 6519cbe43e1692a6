"""Makes a Python process see only a tag-only install (requirements-tag.txt): put this folder on
PYTHONPATH and list the refused top-level modules, comma-separated, in ALTI2V_REFUSE. Importing
one of them fails as it does where the package is not installed; each attempt is appended to the
file ALTI2V_REFUSED_LOG names, so that a test sees what was tried, even where the code under test
caught the error. tests/test_tag_only.py runs alt_i2v.py this way.
"""

import os
import sys

REFUSED = frozenset(filter(None, os.environ.get("ALTI2V_REFUSE", "").split(",")))
LOG = os.environ.get("ALTI2V_REFUSED_LOG")


class RefuseModules:
    """A meta path finder consulted before every other: a refused name is not found."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in REFUSED:
            return None  # the next finders look for it as usual
        if LOG:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(f"{name}\n")
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, RefuseModules())
