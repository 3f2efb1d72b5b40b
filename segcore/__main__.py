"""``python -m segcore`` runs the ``segcore`` command."""

import sys

from segcore.cli import main

sys.exit(main())
