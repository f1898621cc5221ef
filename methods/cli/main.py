"""``gradlens``: the one command, with subcommands.

Usage::

    gradlens batch --model scenes_vgg --images photos/ --out results/   # = python -m methods.batch
    gradlens evaluate --model scenes_vgg --images scenes:200 --out r.parquet   # = python -m methods.evaluate
    gradlens advise --model scenes_vgg --images scenes:40 --out advice/       # = python -m methods.advise
    gradlens methods                                                    # the registered methods (a markdown table)
    gradlens serve [streamlit options]                                  # the dashboard (streamlit run dashboard/Home.py)
    gradlens drift A.pt B.pt --arch scenes_vgg --images scenes:50      # explanation drift between two checkpoints

Each subcommand's own options: ``gradlens <subcommand> --help``. Argparse only: the work is done
by :mod:`methods.pipeline` (batch, evaluate), :mod:`methods.advisor` (advise), the registry (methods) and Streamlit (serve).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import subprocess
import sys
from collections.abc import Sequence

import methods  # noqa: F401  registers the built-in methods before `gradlens methods` lists them
from methods.cli import advise, batch, evaluate
from methods.cli import drift as drift_cli
from methods.cli.method_table import markdown_table

__all__ = ["main", "dashboard_home"]

SUBCOMMANDS = {
    "batch": "the four views, the raw maps and a manifest for every image of a folder",
    "evaluate": "faithfulness and localization of methods on a data set",
    "advise": "which method, layer and normalization to trust on your model and images",
    "drift": "explanation drift between two checkpoints of one model (exit 3 past a threshold)",
    "methods": "print the registered methods (key, label, family, cost, paper)",
    "serve": "start the Streamlit dashboard",
}


def dashboard_home() -> pathlib.Path:
    """The installed dashboard's ``Home.py`` (found without importing the dashboard).

    Raises:
        FileNotFoundError: the dashboard is not installed beside the library.
    """
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the dashboard package is not installed beside methods")
    home = pathlib.Path(list(spec.submodule_search_locations)[0]) / "Home.py"
    if not home.is_file():
        raise FileNotFoundError(f"{home} does not exist")
    return home


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gradlens",
        description="Class activation maps for CNNs: batch runs, evaluations, the method registry and the dashboard.",
    )
    sub = p.add_subparsers(dest="command", metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name, help_text in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=name == "methods")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gradlens``; returns the exit status (the subcommand's; 2 for a bad command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SUBCOMMANDS:
        parser = _parser()
        if args and args[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        parser.print_usage(sys.stderr)
        print(f"gradlens: error: choose a subcommand: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command == "batch":
        return batch.main(rest)
    if command == "evaluate":
        return evaluate.main(rest)
    if command == "drift":
        return drift_cli.main(rest)
    if command == "advise":
        return advise.main(rest)
    if command == "methods":
        _parser().parse_args(args)  # only --help
        print(markdown_table())
        return 0
    try:
        home = dashboard_home()
    except FileNotFoundError as exc:
        print(f"gradlens serve: {exc}", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "streamlit", "run", str(home), *rest])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
