"""The reference reward server (scripts/reward_server.py) as a client meets it: its answers to
requests that break the protocol, a scorer of the user's own, and the CLIP scorer against CLIP
embeddings computed here from the same random-weight model (nothing can be downloaded)."""

import base64
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "scripts", "reward_server.py")
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))
    failures += 0 if ok else 1


class Server:
    """scripts/reward_server.py on a free port of 127.0.0.1, stopped on exit."""

    def __init__(self, folder, *args):
        port_file = os.path.join(folder, f"port{time.monotonic_ns()}")
        self.process = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", "--port-file", port_file, *args],
            stderr=subprocess.PIPE, text=True)
        for _ in range(600):
            if os.path.exists(port_file) or self.process.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(port_file):
            raise RuntimeError("the server did not start: " + self.process.stderr.read())
        self.port = int(open(port_file).read())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait()

    def post(self, body, path="/score", headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection.request("POST", path, body=data,
                           headers=headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        status, text = response.status, response.read().decode()
        connection.close()
        return status, json.loads(text)


def png(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def make_clip(folder):
    """A CLIPModel with random weights and a character-level CLIPTokenizer, saved as a user's
    local CLIP folder would be."""
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor,
                              CLIPTokenizer)
    # GPT-2's byte-to-character table, which CLIP's byte-level BPE reads text through.
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 77, "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"]},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16)
    model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return model, CLIPProcessor(image_processor=images, tokenizer=tokenizer)


def main():
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        scorer = os.path.join(folder, "length.py")
        with open(scorer, "w") as f:
            f.write("def score(items, task):\n"
                    "    if task == 'mm2t':\n"
                    "        return [float(len(i['completion'])) for i in items]\n"
                    "    return {'scores': [float(len(i['prompt'])) for i in items],\n"
                    "            'sub_scores': {'words': [len(i['prompt'].split()) for i in items]}}\n"
                    "def broken(items, task):\n"
                    "    return [float('nan')] * len(items)\n"
                    "def short(items, task):\n"
                    "    return [1.0] * (len(items) - 1)\n")
        image = png(Image.new("RGB", (8, 8), (200, 30, 30)))
        t2i = {"reward": "r", "task": "t2i",
               "items": [{"prompt": "two red circles", "image": image, "row": {}},
                         {"prompt": "a square", "image": image, "row": {}}]}
        with Server(folder, "--scorer", scorer + ":score", "--max-bytes", "20000",
                    "--max-items", "3") as server:
            status, reply = server.post(t2i)
            check("own-scorer", status == 200 and reply == {
                "scores": [15.0, 8.0], "sub_scores": {"words": [3.0, 2.0]}}, (status, reply))
            status, reply = server.post({"reward": "r", "task": "mm2t",
                                         "items": [{"completion": "<answer>B</answer>"}]})
            check("own-scorer-answers", status == 200 and reply == {"scores": [18.0]}, reply)
            status, reply = server.post({"task": "t2i", "items": []})
            check("empty-batch", status == 200 and reply == {"scores": []}, reply)
            status, reply = server.post(b"{not json")
            check("malformed-400", status == 400 and "not JSON" in reply["error"], reply)
            status, reply = server.post({"task": "images", "items": []})
            check("bad-task-400", status == 400 and "\"task\"" in reply["error"], reply)
            status, reply = server.post({"task": "t2i", "items": [{"prompt": "x"}]})
            check("no-image-400", status == 400 and "items[0] needs \"image\"" in reply["error"],
                  reply)
            status, reply = server.post({"task": "t2i", "items": [
                {"prompt": "x", "image": base64.b64encode(b"GIF89a").decode()}]})
            check("not-png-400", status == 400 and "not a PNG" in reply["error"], reply)
            status, reply = server.post({"task": "mm2t", "items": [{"completion": "a"}] * 4})
            check("too-many-items-413", status == 413 and "--max-items 3" in reply["error"], reply)
            status, reply = server.post({"task": "mm2t", "items": [{"completion": "a" * 30000}]})
            check("too-large-413", status == 413 and "--max-bytes 20000" in reply["error"], reply)
            status, reply = server.post(t2i, path="/other")
            check("wrong-path-404", status == 404, reply)
            # Still serving after all of that.
            status, reply = server.post(t2i)
            check("still-serving", status == 200, reply)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/health")
            check("health", connection.getresponse().status == 200)
        # A scorer that breaks the protocol is the server's error (500), said clearly.
        for name, said in (("broken", "not a finite number"), ("short", "1 scores for 2 items")):
            with Server(folder, "--scorer", scorer + ":" + name) as server:
                status, reply = server.post(t2i)
                check(f"scorer-{name}-500", status == 500 and said in reply["error"], reply)
        # Listening on 127.0.0.1 only, unless told otherwise.
        with Server(folder, "--scorer", scorer + ":score") as server:
            listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
            local = [line.split()[3] for line in listening.splitlines()
                     if line.split()[3].endswith(f":{server.port}")]
            check("binds-loopback", local == [f"127.0.0.1:{server.port}"], local)

        # The CLIP scorer: cosine(image, prompt) of CLIP's projected embeddings, computed here
        # with get_image_features / get_text_features.
        try:
            import torch
            import transformers  # noqa: F401
        except ImportError:
            print("SKIP clip: transformers is not installed (scripts/setup.sh installs it)")
        else:
            clip = os.path.join(folder, "clip")
            os.makedirs(clip)
            model, processor = make_clip(clip)
            pictures = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
            pictures.append(Image.fromarray(
                (torch.rand(64, 64, 3) * 255).to(torch.uint8).numpy()))
            prompts = ["a photo of a red circle", "two blue squares", "noise"]
            request = {"task": "t2i", "items": [{"prompt": p, "image": png(i), "row": {}}
                                                for p, i in zip(prompts, pictures)]}
            with torch.no_grad():
                text = processor(text=prompts, return_tensors="pt", padding=True)
                pixels = processor(images=pictures, return_tensors="pt")["pixel_values"]
                t = model.get_text_features(**text)
                v = model.get_image_features(pixel_values=pixels)
                t = getattr(t, "pooler_output", t)
                v = getattr(v, "pooler_output", v)
                expected = torch.nn.functional.cosine_similarity(v, t).tolist()
            with Server(folder, "--scorer", "clip", "--clip-model", clip) as server:
                status, reply = server.post(request)
            ok = status == 200 and all(abs(a - b) < 1e-5 for a, b in zip(reply["scores"],
                                                                            expected))
            check("clip-score", ok and len(set(reply["scores"])) == 3, (reply, expected))

    print("all passed" if failures == 0 else f"{failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
