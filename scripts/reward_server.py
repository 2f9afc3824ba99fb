#!/usr/bin/env python3
"""A reward server for corl's remote rewards (docs/rewards.md): copy it, put your scorer behind it.

corl POSTs a batch of rollouts as JSON to /score and reads one score per rollout back:

    request  {"reward": NAME, "task": "t2i" | "mm2t", "items": [ITEM, ...]}
             t2i ITEM:  {"prompt": str, "image": base64 PNG (the generated image), "row": ROW}
             mm2t ITEM: {"completion": str, "row": ROW}
             ROW: {"id", "prompt", "question", "solution", "qa_type", "category",
                   "spec"?: the prompt's scene spec, "scene"?: the row image's scene,
                   "image"?: base64 PNG of the row's own image}
    reply    {"scores": [float, ...], "sub_scores"?: {name: [float, ...]}}

A scorer is a Python function `score(items, task) -> list[float]` (or a dict as the reply above);
it receives one request's items as one batch. Two ship here:

    --scorer geneval        the ShapeWorld judge, through `corl detect --batch` (the built-in
                            geneval reward's score, bit for bit); sub-score "correct"
    --scorer clip           CLIP score, cosine(image, prompt) from transformers' CLIPModel and
                            CLIPProcessor read from a local folder (--clip-model DIR)
    --scorer FILE.py:NAME   your own function NAME in FILE.py

Only the standard library is needed, but for the CLIP scorer (torch, transformers, pillow). The
server listens on 127.0.0.1 unless --host says otherwise; requests run on threads of their own,
so corl's several requests in flight are scored at once (at most --workers at a time). A request
that is too large, not JSON or not the protocol's shape gets a 4xx status saying why; a scorer
that fails or returns the wrong number of scores, or a non-finite one, gets a 500.

    scripts/reward_server.py --scorer geneval --corl build/corl --port 8000
    scripts/reward_server.py --scorer clip --clip-model models/clip --port 8001
"""

import argparse
import base64
import binascii
import http.server
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time


class BadRequest(Exception):
    """The request breaks the protocol: answered with `status` and the message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def png_bytes(text, where):
    """The PNG file a base64 field carries."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise BadRequest(400, f"{where}: not base64")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise BadRequest(400, f"{where}: not a PNG file")
    return data


def check_request(request, max_items):
    """The request's task and items, or BadRequest saying what is wrong."""
    if not isinstance(request, dict):
        raise BadRequest(400, "the request must be a JSON object")
    task = request.get("task")
    if task not in ("t2i", "mm2t"):
        raise BadRequest(400, f"\"task\" must be \"t2i\" or \"mm2t\", got {task!r}")
    items = request.get("items")
    if not isinstance(items, list):
        raise BadRequest(400, "\"items\" must be a list")
    if len(items) > max_items:
        raise BadRequest(413, f"{len(items)} items, over --max-items {max_items}")
    field = "prompt" if task == "t2i" else "completion"
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(field), str):
            raise BadRequest(400, f"items[{i}] needs a string \"{field}\"")
        if not isinstance(item.get("row", {}), dict):
            raise BadRequest(400, f"items[{i}].row must be an object")
        if task == "t2i":
            if not isinstance(item.get("image"), str):
                raise BadRequest(400, f"items[{i}] needs \"image\", a base64 PNG")
            png_bytes(item["image"], f"items[{i}].image")
    return task, items


def check_scores(result, count):
    """The scorer's result as the protocol's reply; ValueError when it is not one."""
    reply = result if isinstance(result, dict) else {"scores": result}
    for name, values in [("scores", reply.get("scores"))] + list(
            reply.get("sub_scores", {}).items()):
        values = list(values) if values is not None else None
        if values is None or len(values) != count:
            got = "none" if values is None else len(values)
            raise ValueError(f"the scorer returned {got} {name} for {count} items")
        for v in values:
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"the scorer returned {v!r} among its {name}: not a finite number")
    out = {"scores": [float(v) for v in reply["scores"]]}
    if reply.get("sub_scores"):
        out["sub_scores"] = {k: [float(v) for v in vs] for k, vs in reply["sub_scores"].items()}
    return out


# --- Scorers ----------------------------------------------------------------------------------

def geneval_scorer(corl, position_margin=0.1, exclusive=True, partial=True):
    """The ShapeWorld judge (corl detect) on each generated image against its row's scene spec:
    the judge's partial credit (or 1/0 correctness), as the built-in geneval reward scores it."""

    def score(items, task):
        if task != "t2i":
            raise ValueError("the geneval scorer scores images (task t2i)")
        with tempfile.TemporaryDirectory(prefix="reward_server_") as folder:
            lines = []
            for i, item in enumerate(items):
                spec = item.get("row", {}).get("spec")
                if spec is None:
                    raise ValueError(f"items[{i}]: the row has no scene spec to judge against")
                path = os.path.join(folder, f"{i}.png")
                with open(path, "wb") as f:
                    f.write(png_bytes(item["image"], f"items[{i}].image"))
                lines.append(json.dumps({"image": path, "spec": spec}))
            batch = os.path.join(folder, "batch.jsonl")
            with open(batch, "w") as f:
                f.write("\n".join(lines) + "\n")
            run = subprocess.run(
                [corl, "detect", "--batch", batch, "--position-margin", repr(position_margin),
                 "--exclusive", "true" if exclusive else "false"],
                capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"corl detect failed: {run.stderr.strip()[-500:]}")
            verdicts = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        correct = [1.0 if v["correct"] else 0.0 for v in verdicts]
        scores = [v["partial"] for v in verdicts] if partial else correct
        return {"scores": scores, "sub_scores": {"correct": correct}}

    return score


def clip_scorer(folder, device="cpu"):
    """CLIP score: the cosine between the generated image's and its prompt's CLIP embeddings,
    from a CLIPModel and CLIPProcessor saved in `folder` (save_pretrained's layout)."""
    import io

    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder, local_files_only=True).to(device).eval()
    processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)

    def score(items, task):
        if task != "t2i":
            raise ValueError("the clip scorer scores images (task t2i)")
        images = [Image.open(io.BytesIO(png_bytes(item["image"], "image"))).convert("RGB")
                  for item in items]
        prompts = [item["prompt"] for item in items]
        inputs = processor(text=prompts, images=images, return_tensors="pt", padding=True,
                           truncation=True)
        with torch.no_grad():
            out = model(**{k: v.to(device) for k, v in inputs.items()})
        cosine = (out.image_embeds * out.text_embeds).sum(-1)  # both unit vectors
        return cosine.double().cpu().tolist()

    return score


def file_scorer(spec):
    """FILE.py:NAME, a scorer of the user's own."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise SystemExit(f"--scorer {spec}: give FILE.py:FUNCTION")
    module_spec = importlib.util.spec_from_file_location("user_scorer", path)
    if module_spec is None:
        raise SystemExit(f"--scorer {spec}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, name, None)):
        raise SystemExit(f"--scorer {spec}: {path} has no function {name}")
    return getattr(module, name)


# --- Server -----------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "corl-reward-server/1"

    def reply(self, status, body):
        data = json.dumps(body, allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"ok": True, "scorer": self.server.scorer_name})
        else:
            self.reply(404, {"error": f"no such path {self.path}; POST to /score"})

    def do_POST(self):
        config = self.server
        try:
            if self.path != "/score":
                raise BadRequest(404, f"no such path {self.path}; POST to /score")
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise BadRequest(411, "a Content-Length is required")
            if int(length) > config.max_bytes:
                # The body is not read: the connection closes after the reply.
                self.close_connection = True
                raise BadRequest(413, f"{length} bytes, over --max-bytes {config.max_bytes}")
            body = self.rfile.read(int(length))
            try:
                request = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BadRequest(400, f"the body is not JSON: {e}")
            task, items = check_request(request, config.max_items)
        except BadRequest as e:
            self.reply(e.status, {"error": str(e)})
            return
        try:
            with config.workers:
                if config.sleep_s > 0:
                    time.sleep(config.sleep_s)
                result = config.scorer(items, task) if items else []
            self.reply(200, check_scores(result, len(items)))
        except Exception as e:  # the scorer's failure is the server's, not the request's
            self.reply(500, {"error": f"{type(e).__name__}: {e}"})

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scorer", required=True,
                        help="geneval, clip, or FILE.py:FUNCTION (a function of items, task)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--port-file", help="write the port listened on here once listening")
    parser.add_argument("--corl", default="corl", help="the corl program (geneval scorer)")
    parser.add_argument("--position-margin", type=float, default=0.1,
                        help="geneval scorer: reward.position_margin")
    parser.add_argument("--exclusive", choices=["true", "false"], default="true",
                        help="geneval scorer: reward.exclusive")
    parser.add_argument("--strict", action="store_true",
                        help="geneval scorer: 1/0 correctness (reward.geneval_partial false)")
    parser.add_argument("--clip-model", help="clip scorer: a folder holding CLIPModel and "
                        "CLIPProcessor (save_pretrained's files)")
    parser.add_argument("--device", default="cpu", help="clip scorer: torch device")
    parser.add_argument("--workers", type=int, default=4, help="scorer calls at once")
    parser.add_argument("--max-items", type=int, default=1024, help="items a request may hold")
    parser.add_argument("--max-bytes", type=int, default=256 << 20,
                        help="bytes a request may hold")
    parser.add_argument("--sleep", type=float, default=0.0,
                        help="seconds each batch waits before it is scored (a slow scorer, "
                        "for benchmarks)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    if args.scorer == "geneval":
        scorer = geneval_scorer(args.corl, args.position_margin, args.exclusive == "true",
                                partial=not args.strict)
    elif args.scorer == "clip":
        if not args.clip_model:
            parser.error("--scorer clip needs --clip-model DIR")
        scorer = clip_scorer(args.clip_model, args.device)
    else:
        scorer = file_scorer(args.scorer)

    server = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.scorer, server.scorer_name = scorer, args.scorer
    server.workers = threading.BoundedSemaphore(args.workers)
    server.max_items, server.max_bytes = args.max_items, args.max_bytes
    server.sleep_s, server.verbose = args.sleep, args.verbose
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"reward_server: {args.scorer} on http://{args.host}:{port}/score", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
