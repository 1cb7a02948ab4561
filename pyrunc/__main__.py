"""`python -m pyrunc` is the CLI."""

import sys

from pyrunc.cli import main

sys.exit(main())
