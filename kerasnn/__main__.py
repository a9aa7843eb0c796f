"""`python -m kerasnn` runs the command line."""

import sys

from kerasnn.cli import main

sys.exit(main())
