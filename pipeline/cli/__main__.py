"""`python -m mnemoflow.pipeline.cli`."""

import sys

from mnemoflow.pipeline.cli.main import main

sys.exit(main())
