"""testbed: see README.md."""
