#!/usr/bin/env python3
"""How much of a scene's shape and colour the understanding encoder's features carry.

    scripts/vision_probe.py runs/pretrain [runs/unified ...] [--data runs/data]

For every checkpoint, the ViT (as corl computes it, convolution stem included) reads the
one-object scenes of the data's training and held-out rows; a linear probe is fitted on the
training scenes' features and scored on the held-out ones, for the object's shape, its colour
and the half of the image it is in (left or right), from four readings of the patches: their
mean, their maximum, the patch under the object's centre, and all patches side by side. A ViT of the same sizes with freshly drawn weights is probed alike as the floor: a trained
encoder that reads no better than it has learnt nothing that the probe can use.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open

INIT_STD = 0.02  # corl's initialisation of linear and embedding weights


def read_checkpoint(path):
    """The ViT's weights and the model config of a checkpoint folder, run folder or file."""
    for candidate in (path, os.path.join(path, "model.safetensors"),
                      os.path.join(path, "final", "model.safetensors")):
        if os.path.isfile(candidate):
            with safe_open(candidate, "pt") as f:
                meta = f.metadata() or {}
                if "model_config" not in meta:
                    sys.exit(f"{candidate}: no model_config in its metadata; not a corl model")
                weights = {k: f.get_tensor(k) for k in f.keys() if k.startswith("vision_model.")}
            return weights, json.loads(meta["model_config"])
    sys.exit(f"{path}: no model.safetensors here, nor under final/")


def random_weights(weights, seed):
    """Weights of the same shapes drawn as corl draws a new model's: normal(0, 0.02) matrices,
    zero biases, unit norms (PyTorch's default convolution initialisation is not reproduced)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, w in weights.items():
        if "norm" in name:
            out[name] = torch.ones_like(w) if name.endswith("weight") else torch.zeros_like(w)
        elif name.endswith("bias"):
            out[name] = torch.zeros_like(w)
        else:
            out[name] = torch.randn(w.shape, generator=g) * INIT_STD
    return out


def activation(x, name):
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_pytorch_tanh":
        return F.gelu(x, approximate="tanh")
    raise ValueError(f"activation '{name}' is not gelu or gelu_pytorch_tanh")


def vit_features(w, c, images):
    """corl's SiglipVisionModel: images [N, 3, H, W] in [-1, 1] -> [N, patches, hidden]."""
    eps, act = c["vision_layer_norm_eps"], c["vision_hidden_act"]
    x = images
    if c.get("vision_stem_channels", 0) > 0:
        x = activation(F.conv2d(x, w["vision_model.embeddings.stem.weight"],
                                w["vision_model.embeddings.stem.bias"], padding=1), act)
    h = F.conv2d(x, w["vision_model.embeddings.patch_embedding.weight"],
                 w["vision_model.embeddings.patch_embedding.bias"], stride=c["patch_size"])
    h = h.flatten(2).transpose(1, 2) + w["vision_model.embeddings.position_embedding.weight"]
    heads = c["vision_heads"]
    for layer in range(c["vision_layers"]):
        p = lambda name: w[f"vision_model.encoder.layers.{layer}.{name}"]
        b = lambda name: w.get(f"vision_model.encoder.layers.{layer}.{name}")
        n, t, d = h.shape
        y = F.layer_norm(h, (d,), p("layer_norm1.weight"), p("layer_norm1.bias"), eps)
        split = lambda z: z.view(n, t, heads, d // heads).transpose(1, 2)
        q, k, v = (split(F.linear(y, p(f"self_attn.{s}_proj.weight"), b(f"self_attn.{s}_proj.bias")))
                   for s in "qkv")
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d)
        h = h + F.linear(o, p("self_attn.out_proj.weight"), p("self_attn.out_proj.bias"))
        y = F.layer_norm(h, (d,), p("layer_norm2.weight"), p("layer_norm2.bias"), eps)
        y = activation(F.linear(y, p("mlp.fc1.weight"), p("mlp.fc1.bias")), act)
        h = h + F.linear(y, p("mlp.fc2.weight"), p("mlp.fc2.bias"))
    return F.layer_norm(h, (h.shape[-1],), w["vision_model.post_layernorm.weight"],
                        w["vision_model.post_layernorm.bias"], eps)


def one_object_scenes(data, split, limit, size):
    """Images [N, 3, size, size] in [-1, 1], and each scene's object: shape, colour, (x, y)."""
    images, objects = [], []
    with open(os.path.join(data, f"{split}.jsonl")) as f:
        for line_no, line in enumerate(f, 1):
            row = json.loads(line)
            found = row.get("scene", {}).get("objects", [])
            if len(found) != 1:
                continue
            image = Image.open(os.path.join(data, row["real_image"])).convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BOX)
            pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
            images.append(pixels / 127.5 - 1.0)
            objects.append(found[0])
            if len(images) == limit:
                break
    if not images:
        sys.exit(f"{data}/{split}.jsonl: no one-object scenes")
    return torch.stack(images), objects


def fit_probe(train_x, train_y, test_x, test_y, classes, steps=500, seed=0):
    """Held-out accuracy of a multinomial logistic regression on standardised features."""
    torch.manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-5
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    probe = torch.nn.Linear(train_x.shape[1], classes)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            F.cross_entropy(probe(train_x), train_y).backward()
            optimizer.step()
    with torch.no_grad():
        return (probe(test_x).argmax(1) == test_y).float().mean().item()


def readings(features, objects, grid):
    """The four readings of each scene's patches: mean, maximum, the object's centre patch, all."""
    cells = torch.tensor([min(int(o["y"] * grid), grid - 1) * grid + min(int(o["x"] * grid), grid - 1)
                          for o in objects])
    return {"mean": features.mean(1), "max": features.max(1).values,
            "centre patch": features[torch.arange(len(objects)), cells],
            "all patches": features.flatten(1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folder, run folder or file")
    parser.add_argument("--data", default="runs/data", help="folder of train.jsonl and eval.jsonl")
    parser.add_argument("--train", type=int, default=3000, help="one-object training scenes")
    parser.add_argument("--test", type=int, default=600, help="one-object held-out scenes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    models = [(path, *read_checkpoint(path)) for path in args.checkpoints]
    first_weights, first_config = models[0][1], models[0][2]
    models.append(("random weights", random_weights(first_weights, args.seed), first_config))

    print("| model | features | shape | colour | left or right half |")
    print("|---|---|---|---|---|")
    scenes = {}
    for name, weights, config in models:
        size = config["image_size"]
        if size not in scenes:
            scenes[size] = (one_object_scenes(args.data, "train", args.train, size),
                            one_object_scenes(args.data, "eval", args.test, size))
        (train_images, train_objects), (test_images, test_objects) = scenes[size]
        labels = {}
        for key in ("shape", "color"):
            values = sorted({o[key] for o in train_objects + test_objects})
            labels[key] = [torch.tensor([values.index(o[key]) for o in objs])
                           for objs in (train_objects, test_objects)] + [len(values)]
        labels["half"] = [torch.tensor([int(o["x"] >= 0.5) for o in objs])
                          for objs in (train_objects, test_objects)] + [2]
        grid = size // config["patch_size"]
        with torch.no_grad():
            train = readings(vit_features(weights, config, train_images), train_objects, grid)
            test = readings(vit_features(weights, config, test_images), test_objects, grid)
        for reading in train:
            scores = [fit_probe(train[reading], labels[k][0], test[reading], labels[k][1],
                                labels[k][2], seed=args.seed) for k in ("shape", "color", "half")]
            print(f"| {name} | {reading} | " + " | ".join(f"{x:.3f}" for x in scores) + " |",
                  flush=True)
    print(f"\n{len(train_images)} training and {len(test_images)} held-out one-object scenes; "
          "chance is one over the number of shapes, colours or halves.")


if __name__ == "__main__":
    main()
