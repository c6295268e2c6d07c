"""`python -m bench.bare PORT`: the bot's HTTP server with nothing behind it.

The same granian set-up as `python app.py --http` (bot.server.serve_http: one worker, the same
threads), serving a WSGI app that reads the request and answers 200 at once. The benchmark
sends it the same bursts of signed commands as the bot, so the table can show how much of an
acknowledgement's time is the server itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from bot.server import serve_http

if TYPE_CHECKING:
    from bot.app_factory import Bot
    from bot.web import StartResponse


def answer_at_once(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Read the body, answer 200 with an empty body."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]


class _Bare:
    """What serve_http needs of a Bot: its WSGI app, and nothing to stop."""

    wsgi = staticmethod(answer_at_once)

    def stop_background(self) -> None:
        """Nothing runs in the background."""

    def finish_work(self, timeout: float = 30.0) -> bool:
        """No work is ever queued."""
        return True


def main(argv: list[str]) -> int:
    """Serve on 127.0.0.1:PORT until SIGTERM."""
    serve_http(lambda: cast("Bot", _Bare()), host="127.0.0.1", port=int(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
