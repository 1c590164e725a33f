"""``python -m ptl_ext``: the ``ptl`` command line."""

from .cli import main

raise SystemExit(main())
