#!/usr/bin/env python3
"""A reward server that misbehaves on purpose, for the remote reward's fault tests.

    reward_fault_server.py MODE --port-file FILE [--sleep S] [--fail N] [--log FILE]
                           [--exit-after N]

Every POST is answered according to MODE (items counted from the request); MODE "path" takes
each request's mode from its URL path instead (POST /nan answers as "nan"), so that one server
plays every fault:
    ok           one score per item: the item's index within its request + 0.5 x the request's
                 length (so batches are told apart), sub-score "index"
    wrong_count  one score too few
    nan          a NaN among the scores (Python's json writes it as the bare word NaN)
    null         a null among the scores
    not_json     a body that is not JSON
    no_scores    a JSON object without "scores"
    redirect     302 to http://127.0.0.1:1/elsewhere
    status_400   400 with an error message
    flaky        503 for the first --fail requests, then as ok
    slow         as ok, after --sleep seconds
With --exit-after N the server answers N requests and then goes away (a server that is down).
Each request is appended to --log when given, a line "ITEMS TASK REWARD MODE", so that a test
can tell how many tries reached the server.
"""

import argparse
import http.server
import json
import os
import threading
import time

lock = threading.Lock()
seen = {"requests": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status, body, headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        args = self.server.args
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = len(request["items"])
        mode = self.path.strip("/") if args.mode == "path" else args.mode
        with lock:
            seen["requests"] += 1
            count = seen["requests"]
            if args.log:
                with open(args.log, "a") as f:
                    f.write(f"{n} {request['task']} {request['reward']} {mode}\n")
        scores = [i + 0.5 * n for i in range(n)]
        good = json.dumps({"scores": scores, "sub_scores": {"index": list(range(n))}})
        if mode == "flaky":
            mode = "status_503" if count <= args.fail else "ok"
        if mode == "slow":
            time.sleep(args.sleep)
            mode = "ok"
        if mode == "ok":
            self.send(200, good)
            if args.exit_after and count >= args.exit_after:
                self.wfile.flush()
                os._exit(0)
        elif mode == "wrong_count":
            self.send(200, json.dumps({"scores": scores[:-1]}))
        elif mode == "nan":
            self.send(200, json.dumps({"scores": [float("nan")] + scores[1:]}))
        elif mode == "null":
            self.send(200, json.dumps({"scores": [None] + scores[1:]}))
        elif mode == "not_json":
            self.send(200, "<html>this is not JSON</html>")
        elif mode == "no_scores":
            self.send(200, json.dumps({"rewards": scores}))
        elif mode == "redirect":
            self.send(302, "", [("Location", "http://127.0.0.1:1/elsewhere")])
        elif mode == "status_400":
            self.send(400, json.dumps({"error": "items[0] needs a string \"prompt\""}))
        elif mode == "status_503":
            self.send(503, json.dumps({"error": "busy"}))

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail", type=int, default=1)
    parser.add_argument("--log")
    parser.add_argument("--exit-after", type=int, default=0)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.args = args
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
