"""The binary's entry point (PyInstaller runs a script, not a package's __main__)."""

import sys

from nftune.cli import main

sys.exit(main())
