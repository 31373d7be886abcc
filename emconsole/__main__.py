"""`python -m emconsole` runs the same entry point as the console script."""

from emconsole.cli.main import main

raise SystemExit(main())
