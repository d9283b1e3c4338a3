"""emulator: see README.md."""
