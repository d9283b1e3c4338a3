"""`python -m testbed.agent --node NAME --listen ADDR [--listen ADDR ...] [--port P]`: run the agent."""

from __future__ import annotations

import argparse
import logging
import os

from testbed.agent.protocol import DEFAULT_MAX_PAYLOAD_BYTES
from testbed.agent.server import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m testbed.agent")
    parser.add_argument("--node", required=True)
    parser.add_argument("--listen", action="append", required=True,
                        help="an address to listen on (the node's emulated-network addresses, loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--max-payload-bytes", type=int, default=DEFAULT_MAX_PAYLOAD_BYTES)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(message)s")
    serve(args.node, args.listen, args.port, args.max_payload_bytes)


if __name__ == "__main__":
    main()
