import sys

from musicgen_local.command import main

sys.exit(main())
