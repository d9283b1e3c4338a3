"""Command line for the emulator (lands with its issue)."""

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="emulator", description="Device/edge/cloud tiers as Docker containers."
    )
    parser.parse_args(argv)
    parser.print_help()
    return 0
