"""``python -m monoculture.audit PATH...`` is ``monoculture audit PATH...``.

This entry point only forwards to the command line; the ``audit`` package itself never imports
``monoculture.reports`` (data flows datasets -> descriptors -> audit -> reports).
"""
import sys

from monoculture.cli import main

raise SystemExit(main(["audit", *sys.argv[1:]]))
