#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/TARGET/seed-*) from real inputs: the
shipped recipes, dataset rows as `corl data` writes them, safetensors files as the Python
`safetensors` package writes them, a tokenizer.json trained by `tokenizers` and a config.json
written by transformers' JanusConfig, and images in the formats a dataset may hold.

    .venv/bin/python fuzz/make_corpus.py        (from the repository root)

Inputs libFuzzer finds that add coverage are merged in beside them by scripts/fuzz.sh
(`-merge=1`); crashes it finds are kept under fuzz/corpus/TARGET/regression-* once fixed.
"""
import io
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import JanusConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def recipes():
    # The first byte picks the schema: even, the data recipe; odd, the GRPO stages' recipe.
    with open(os.path.join(ROOT, "configs", "world.yaml"), "rb") as f:
        put("recipe", "world.yaml", b"\x00" + f.read())
    for name in ["unified.yaml", "refine_t2i.yaml", "refine_mcq.yaml"]:
        with open(os.path.join(ROOT, "configs", name), "rb") as f:
            put("recipe", name, b"\x01" + f.read())
    put("recipe", "flow.yaml", b"\x01grpo: {beta: 0.04, reward_funcs: [geneval, accuracy]}\n")
    put("recipe", "bad-key.yaml", b"\x00world:\n  resolutoin: 32\n")


def rows():
    # A row of each kind `corl data` writes, its image in fuzz/data/ (the target's folder).
    data = os.path.join(ROOT, "fuzz", "data")
    os.makedirs(data, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 40, np.uint8)).save(os.path.join(data, "scene.png"))
    scene = {"objects": [{"color": "red", "shape": "circle", "size": 0.12, "x": 0.3, "y": 0.6},
                         {"color": "blue", "shape": "square", "size": 0.1, "x": 0.7, "y": 0.4}]}
    spec = {"category": "position", "exact_count": False,
            "include": [{"count": 1, "shape": "circle", "color": "red"},
                        {"count": 1, "shape": "square", "color": "blue"}],
            "relation": "left of"}
    mc = {"id": "train-1", "prompt": "a photo of a red circle left of a blue square",
          "real_image": "scene.png",
          "qa_problem": "Where is the red circle? Options: A. left B. right",
          "qa_solution": "<think>It is on the left.</think><answer>A</answer>", "qa_type": "MC",
          "category": "position", "question_kind": "position", "answer": "A", "spec": spec,
          "scene": scene}
    put("dataset_row", "shapeworld-mc.jsonl", json.dumps(mc))
    oe = {"id": "eval-2", "prompt": "a photo of two circles", "real_image": "scene.png",
          "qa_problem": "How many circles are there?", "qa_solution": "<answer>2</answer>",
          "qa_type": "OE"}
    put("dataset_row", "plain-oe.jsonl", json.dumps(oe))


def safetensors_files():
    torch.manual_seed(0)
    put("safetensors", "mixed.safetensors", save(
        {"w": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.int64),
         "h": torch.randn(2, 2).to(torch.bfloat16), "mask": torch.tensor([True, False]),
         "empty": torch.zeros(0, 3)}, metadata={"format": "pt", "step": "12"}))
    put("safetensors", "scalar.safetensors",
        save({"x": torch.tensor(1.5, dtype=torch.float16), "u": torch.tensor([7], dtype=torch.uint8)}))


def tokenizer():
    texts = ["a photo of two red circles", "How many squares are there? 3",
             "<think>a</think><answer>B</answer>", "café déjà vu 2025"] * 10
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<image>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    put("tokenizer_json", "gpt2-bytelevel.json", tok.to_str())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    put("tokenizer_json", "digits-sequence.json", tok.to_str())


def janus_config():
    config = JanusConfig(
        text_config=dict(model_type="llama", vocab_size=300, hidden_size=64,
                         intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2,
                           num_attention_heads=4, mlp_ratio=2.0, projection_dim=64,
                           hidden_act="gelu", num_image_tokens=16, depth=2),
        vq_config=dict(embed_dim=8, num_embeddings=96, latent_channels=32, base_channels=32,
                       channel_multiplier=[1, 1, 2], num_res_blocks=1, projection_dim=64,
                       image_token_embed_dim=64, num_hidden_layers=2, hidden_act="gelu"),
        image_token_id=299, tie_word_embeddings=False)
    put("janus_config", "small.json", config.to_json_string())


def images():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    for name, image, fmt in [("rgb.png", Image.fromarray(rgb), "PNG"),
                             ("gray.png", Image.fromarray(rgb[:, :, 0]), "PNG"),
                             ("rgba.png", Image.fromarray(rgb).convert("RGBA"), "PNG"),
                             ("gray16.png", Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257),
                              "PNG"),
                             ("photo.jpg", Image.fromarray(rgb), "JPEG"),
                             ("palette.bmp", Image.fromarray(rgb).convert("P"), "BMP")]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        put("image", name, buffer.getvalue())


if __name__ == "__main__":
    recipes()
    rows()
    safetensors_files()
    tokenizer()
    janus_config()
    images()
    print(f"corpora written under {CORPUS}", file=sys.stderr)
