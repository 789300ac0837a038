"""``python -m questline ...``: see :mod:`questline.cli`."""

import sys

from questline.cli import main

if __name__ == "__main__":
    sys.exit(main())
