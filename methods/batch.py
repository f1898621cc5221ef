"""``python -m methods.batch``: the batch command, at its documented address.

The command lives in :mod:`methods.cli.batch` (the library part in :mod:`methods.pipeline.batch`); this
module only forwards to it.
"""

from methods.cli.batch import main

if __name__ == "__main__":
    raise SystemExit(main())
