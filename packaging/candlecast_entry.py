"""Entry script of the frozen ``candlecast`` program (the script PyInstaller starts): runs ``desktop_app.cli``."""

import sys

from desktop_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
