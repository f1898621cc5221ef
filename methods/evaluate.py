"""``python -m methods.evaluate``: the evaluation command, kept at its documented address.

The command lives in :mod:`methods.cli.evaluate` (the library part in :mod:`methods.pipeline.evaluate`); this
module only forwards to it.
"""

from methods.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
