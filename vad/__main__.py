import sys

from vad.apps.cli import main

sys.exit(main())
