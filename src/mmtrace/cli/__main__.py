"""`python -m mmtrace.cli`: the same as the `mmtrace` command."""

import sys

from mmtrace.cli import main

sys.exit(main())
