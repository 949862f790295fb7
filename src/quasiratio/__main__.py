import sys

from quasiratio.cli import main

sys.exit(main())
