"""`python -m constructs_lib.model_staging ...`: the operator CLI of the staging runtime."""

import sys

from .runtime.staging.cli import main

sys.exit(main())
