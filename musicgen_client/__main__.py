"""`python -m musicgen_client` runs the `musicgen` command."""

import sys

from musicgen_client.cli import main

sys.exit(main())
