"""``python -m qbench``: the qbench command line (what ``torchrun -m qbench`` starts on every rank)."""

import sys

from qbench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
