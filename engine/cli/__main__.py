"""`python -m neurosel.cli ...` runs the `neurosel` command line."""

import sys

from neurosel.cli import main

sys.exit(main())
