import sys

from repsr.cli import main

sys.exit(main())
