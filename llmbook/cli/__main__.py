"""``python -m llmbook.cli`` runs the ``llmbook`` command (hand-written; chapters 08 and 09)."""

import sys

from llmbook.cli import main

sys.exit(main())
