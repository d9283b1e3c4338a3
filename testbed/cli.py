"""Command line for the testbed (lands with its issue)."""

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="testbed", description="Experiments: measured split inference, simulation and sweeps.")
    parser.parse_args(argv)
    parser.print_help()
    return 0
