"""``python -m dmplan``: the command line."""

import sys

from dmplan.addin.cli import main

sys.exit(main())
