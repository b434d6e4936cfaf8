"""``python -m genetic_cnn.cli``."""

import sys

from genetic_cnn.cli.app import main

sys.exit(main())
