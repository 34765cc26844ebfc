"""``python -m rag ...`` is the ``rag`` command."""

import sys

from .cli import main

sys.exit(main())
