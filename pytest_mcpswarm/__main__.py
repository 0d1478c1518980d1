import sys

from pytest_mcpswarm.cli import main

sys.exit(main())
