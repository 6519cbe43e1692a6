"""Rate-limiter benchmark: how far apart the scraper's requests arrive, as the site sees them.

Starts an HTTP server on 127.0.0.1 that notes when each request arrives, then sends --requests
GETs through `alti2v.scrape.http.PoliteSession` (the helper every scraper request goes through)
at each --rate, --repeats times with a fresh session. Per repeat: the achieved rate
((requests - 1) / the time from the first arrival to the last) and the smallest and largest gap
between arrivals; then the spread over the repeats. Markdown on stdout, after the machine.

    python -m bench.scrape_rate                 # --rate 1 and 5, 11 requests, 5 repeats (~70 s)
    python -m bench.scrape_rate > bench/measured/scrape-rate.md
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alti2v.scrape import ScrapeOptions
from alti2v.scrape.http import PoliteSession
from bench.common import markdown_header


class ArrivalLog(BaseHTTPRequestHandler):
    """Answers every GET with a tiny body and appends its arrival time to the server's list."""

    def do_GET(self) -> None:
        self.server.arrivals.append(time.monotonic())  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the arrivals are the record."""


def one_repeat(server: ThreadingHTTPServer, rate: float, count: int) -> dict[str, float]:
    """Send `count` requests at `rate` through a fresh session; the gaps the server saw."""
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    defaults = ScrapeOptions()
    session = PoliteSession(
        base_url,
        rate=rate,
        timeout=defaults.timeout,
        retries=0,
        backoff=defaults.backoff,
        max_wait=defaults.max_wait,
    )
    server.arrivals = []  # type: ignore[attr-defined]
    for index in range(count):
        session.get(f"{base_url}/r{index}")
    arrivals = server.arrivals  # type: ignore[attr-defined]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    return {
        "achieved": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]),
        "smallest_gap": min(gaps),
        "largest_gap": max(gaps),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, nargs="+", default=[ScrapeOptions().rate, 5.0], help="req/s"
    )
    parser.add_argument("--requests", type=int, default=11, help="requests per repeat (2 or more)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per rate")
    args = parser.parse_args()
    if args.requests < 2 or args.repeats < 1:
        parser.error("--requests must be 2 or more and --repeats 1 or more")

    server = ThreadingHTTPServer(("127.0.0.1", 0), ArrivalLog)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(markdown_header("Rate limiter: request spacing seen by a server on 127.0.0.1"))
    print("| --rate | repeat | requests | achieved req/s | smallest gap (s) | largest gap (s) |")
    print("|---|---|---|---|---|---|")
    summary = []
    try:
        for rate in args.rate:
            results = [one_repeat(server, rate, args.requests) for _ in range(args.repeats)]
            for number, result in enumerate(results, 1):
                print(
                    f"| {rate:g} | {number} | {args.requests} | {result['achieved']:.3f} | "
                    f"{result['smallest_gap']:.4f} | {result['largest_gap']:.4f} |"
                )
            achieved = [result["achieved"] for result in results]
            summary.append(
                f"| {rate:g} | {args.repeats} | {min(achieved):.3f} / "
                f"{statistics.median(achieved):.3f} / {max(achieved):.3f} | "
                f"{min(result['smallest_gap'] for result in results):.4f} | "
                f"{max(result['largest_gap'] for result in results):.4f} |"
            )
    finally:
        server.shutdown()
        server.server_close()
    print()
    print("| --rate | repeats | req/s min / median / max | smallest gap (s) | largest gap (s) |")
    print("|---|---|---|---|---|")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
