"""``python -m opus_min`` = ``opus-min``."""

from .cli import main

raise SystemExit(main())
