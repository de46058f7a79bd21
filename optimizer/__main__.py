"""``python -m optimizer`` is the ``apo`` command."""

import sys

from optimizer.cli.main import main

sys.exit(main())
