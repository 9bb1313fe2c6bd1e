"""Entry script of the frozen ``candlecast`` program (the script PyInstaller starts).

It imports ``desktop_app.cli`` instead of running that file as ``__main__``: run as a script, ``cli.py`` would be
loaded twice (as ``__main__`` and, through the subcommands' ``from desktop_app.cli import UserError``, as
``desktop_app.cli``), and a subcommand's ``UserError`` would then not be the class ``main`` catches.
"""

import sys

from desktop_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
