"""``python -m optimizer`` is the ``apo`` command."""

import sys

from optimizer.cli import main

sys.exit(main())
