"""`python -m bot` is the `wsimg` command."""

import sys

from bot.cli import main

sys.exit(main())
