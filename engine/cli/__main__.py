"""`python -m engine.cli ...` runs the `neurosel` command line."""

import sys

from engine.cli import main

sys.exit(main())
