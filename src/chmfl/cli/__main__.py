import sys

from chmfl.cli.main import main

sys.exit(main())
