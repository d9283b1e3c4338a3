"""`scission benchmark` argument parsing; must not import TensorFlow at module import time."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("benchmark", help="profile Keras models block by block on this machine")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    raise SystemExit("scission benchmark: not implemented yet")
