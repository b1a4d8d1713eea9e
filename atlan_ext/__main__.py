"""``python -m atlan_ext``: the ``atlan-lineage`` command."""

import sys

from atlan_ext.cli import main

sys.exit(main())
