"""``python -m duplexaudio``: the command line of `duplexaudio.cli`."""

import sys

from duplexaudio.cli import main

sys.exit(main())
