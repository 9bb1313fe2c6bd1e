"""Entry script of the frozen ``candlecast`` program (the script PyInstaller starts): runs ``desktop_app.cli``.

The onefile build shows PyInstaller's splash screen while it unpacks itself (``packaging/candlecast.spec``). Here
the splash says the program is starting; a subcommand (``serve``, ``train``, ``worker``, ...) closes it at once,
the GUI once its window has drawn its first frame (``desktop_app.app``). The app's own children (workers, the
importer) are this program again: ``PYINSTALLER_SUPPRESS_SPLASH_SCREEN`` keeps them from showing a splash.
"""

import os
import sys

try:
    import pyi_splash  # only in a build with a splash screen (onefile)
except ImportError:
    pyi_splash = None
if pyi_splash is not None and pyi_splash.is_alive():
    pyi_splash.update_text("Unpacked; starting Candlecast…")

os.environ["PYINSTALLER_SUPPRESS_SPLASH_SCREEN"] = "1"

from desktop_app.cli import COMMANDS, main  # noqa: E402 (after the splash says what is happening)

if __name__ == "__main__":
    if pyi_splash is not None and sys.argv[1:2] and sys.argv[1] in COMMANDS:
        pyi_splash.close()
    sys.exit(main())
