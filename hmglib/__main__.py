"""``python -m hmglib`` is the ``hmg`` command."""

import sys

from hmglib.cli import main

sys.exit(main())
