"""``python -m ringfence`` is the ``ringfence`` command."""

import sys

from ringfence.cli.main import main

sys.exit(main())
