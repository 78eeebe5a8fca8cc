import sys

from cryofm.cli.main import main

sys.exit(main())
