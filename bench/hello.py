"""The ceiling for P1/P2: a bare Werkzeug app under waitress with the same thread settings.

GET answers a short text, POST answers 303 with an absolute Location, like a job creation.
    python bench/hello.py PORT THREADS
"""

from __future__ import annotations

import sys

import waitress
from werkzeug.wrappers import Request, Response


@Request.application
def hello(request: Request) -> Response:
    if request.method == "POST":
        request.form  # read the body, as the real app does  # noqa: B018
        response = Response("", status=303)
        response.headers["Location"] = request.host_url + "rest/hello/1abc"
        return response
    return Response("EXECUTING", content_type="text/plain; charset=utf-8")


if __name__ == "__main__":
    port, threads = int(sys.argv[1]), int(sys.argv[2])
    waitress.serve(hello, host="127.0.0.1", port=port, threads=threads, ident="hello")
