"""``python -m data_pipelines.ingest``: the same as ``geoloc ingest``."""

import sys

from data_pipelines.ingest.cli import main

sys.exit(main())
