"""A loopback Atlan stand-in for the integration stages: records every lineage POST (one JSON
event per line in FILE) and answers 202, or refuses connections while FILE.down exists.

    python integration/standin.py FILE      # prints its port, then serves until killed
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORD = Path(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
        if Path(f"{RECORD}.down").exists():
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        connector = self.path.split("/events/openlineage/", 1)[-1].split("/", 1)[0]
        with RECORD.open("a", encoding="utf-8") as out:
            for event in body if isinstance(body, list) else [body]:
                out.write(json.dumps({"connector": connector, "event": event}) + "\n")
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
