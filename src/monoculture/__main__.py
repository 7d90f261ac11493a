"""``python -m monoculture`` runs the command-line interface."""
from monoculture.cli import main

raise SystemExit(main())
