"""``python -m methods.advise``: the Advisor's command, beside ``methods.batch`` and ``methods.evaluate``.

The command lives in :mod:`methods.cli.advise` (the library part in :mod:`methods.advisor`); this
module only forwards to it.
"""

from methods.cli.advise import main

if __name__ == "__main__":
    raise SystemExit(main())
