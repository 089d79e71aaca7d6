"""``python -m duplexio``: the command line of `duplexio.cli`."""

import sys

from duplexio.cli import main

sys.exit(main())
