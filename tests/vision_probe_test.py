"""scripts/vision_probe.py: its ViT against one built from torch.nn's own layers, with and
without the convolution stem, and its probe against labels that are and are not in the features."""
import json
import os
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import vision_probe  # noqa: E402

CONFIG = {"image_size": 16, "patch_size": 4, "vision_hidden_size": 12, "vision_heads": 3,
          "vision_layers": 2, "vision_intermediate_size": 20, "vision_layer_norm_eps": 1e-6,
          "vision_hidden_act": "gelu_pytorch_tanh"}


def random_checkpoint(config, path):
    torch.manual_seed(1)
    d, i, p = config["vision_hidden_size"], config["vision_intermediate_size"], config["patch_size"]
    stem = config.get("vision_stem_channels", 0)
    w = {"vision_model.embeddings.patch_embedding.weight": torch.randn(d, stem or 3, p, p) * 0.2,
         "vision_model.embeddings.patch_embedding.bias": torch.randn(d) * 0.2,
         "vision_model.embeddings.position_embedding.weight":
             torch.randn((config["image_size"] // p) ** 2, d) * 0.2,
         "vision_model.post_layernorm.weight": 1 + torch.randn(d) * 0.1,
         "vision_model.post_layernorm.bias": torch.randn(d) * 0.1}
    if stem:
        w["vision_model.embeddings.stem.weight"] = torch.randn(stem, 3, 3, 3) * 0.3
        w["vision_model.embeddings.stem.bias"] = torch.randn(stem) * 0.3
    for layer in range(config["vision_layers"]):
        pre = f"vision_model.encoder.layers.{layer}."
        for norm in ("layer_norm1", "layer_norm2"):
            w[pre + norm + ".weight"] = 1 + torch.randn(d) * 0.1
            w[pre + norm + ".bias"] = torch.randn(d) * 0.1
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[pre + f"self_attn.{proj}.weight"] = torch.randn(d, d) * 0.3
            w[pre + f"self_attn.{proj}.bias"] = torch.randn(d) * 0.1
        w[pre + "mlp.fc1.weight"] = torch.randn(i, d) * 0.3
        w[pre + "mlp.fc1.bias"] = torch.randn(i) * 0.1
        w[pre + "mlp.fc2.weight"] = torch.randn(d, i) * 0.3
        w[pre + "mlp.fc2.bias"] = torch.randn(d) * 0.1
    w["language_model.lm_head.weight"] = torch.zeros(2, 2)  # not the ViT's: must be left out
    save_file(w, path, metadata={"model_config": json.dumps(config), "format": "corl-ulm"})


def torch_nn_vit(w, config):
    """The same ViT from nn.Conv2d, nn.TransformerEncoderLayer (pre-norm) and nn.LayerNorm."""
    d, heads, eps = config["vision_hidden_size"], config["vision_heads"], config["vision_layer_norm_eps"]
    tanh_gelu = lambda x: F.gelu(x, approximate="tanh")
    stem_channels = config.get("vision_stem_channels", 0)
    modules = []
    if stem_channels:
        stem = torch.nn.Conv2d(3, stem_channels, 3, padding=1)
        stem.weight.data, stem.bias.data = (w["vision_model.embeddings.stem." + k] for k in ("weight", "bias"))
        modules += [stem, torch.nn.GELU(approximate="tanh")]
    patch = torch.nn.Conv2d(stem_channels or 3, d, config["patch_size"], stride=config["patch_size"])
    patch.weight.data, patch.bias.data = (w["vision_model.embeddings.patch_embedding." + k]
                                          for k in ("weight", "bias"))
    modules.append(patch)
    layers = []
    for layer in range(config["vision_layers"]):
        pre = f"vision_model.encoder.layers.{layer}."
        block = torch.nn.TransformerEncoderLayer(d, heads, config["vision_intermediate_size"], 0.0,
                                                 tanh_gelu, eps, batch_first=True, norm_first=True)
        attn = block.self_attn
        attn.in_proj_weight.data = torch.cat([w[pre + f"self_attn.{s}_proj.weight"] for s in "qkv"])
        attn.in_proj_bias.data = torch.cat([w[pre + f"self_attn.{s}_proj.bias"] for s in "qkv"])
        attn.out_proj.weight.data = w[pre + "self_attn.out_proj.weight"]
        attn.out_proj.bias.data = w[pre + "self_attn.out_proj.bias"]
        for ours, theirs in (("mlp.fc1", block.linear1), ("mlp.fc2", block.linear2),
                             ("layer_norm1", block.norm1), ("layer_norm2", block.norm2)):
            theirs.weight.data, theirs.bias.data = w[pre + ours + ".weight"], w[pre + ours + ".bias"]
        layers.append(block.eval())
    final = torch.nn.LayerNorm(d, eps)
    final.weight.data, final.bias.data = (w["vision_model.post_layernorm." + k] for k in ("weight", "bias"))
    position = w["vision_model.embeddings.position_embedding.weight"]

    def forward(images):
        h = torch.nn.Sequential(*modules)(images).flatten(2).transpose(1, 2) + position
        for block in layers:
            h = block(h)
        return final(h)
    return forward


failures = 0
with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
    images = torch.rand(5, 3, 16, 16) * 2 - 1
    for stem in (0, 6):
        config = dict(CONFIG, vision_stem_channels=stem)
        path = os.path.join(tmp, f"stem{stem}", "final")
        os.makedirs(path)
        random_checkpoint(config, os.path.join(path, "model.safetensors"))
        weights, read_config = vision_probe.read_checkpoint(os.path.dirname(path))  # a run folder
        assert read_config == config, read_config
        assert not any(k.startswith("language_model") for k in weights)
        ours = vision_probe.vit_features(weights, config, images)
        reference = torch_nn_vit(weights, config)(images)
        error = (ours - reference).abs().max().item()
        print(f"stem {stem}: features {tuple(ours.shape)}, largest difference {error:.2e}")
        if ours.shape != (5, 16, 12) or error > 1e-4:
            failures += 1

# The probe reads a label that a feature carries, and does not invent one that no feature does.
torch.manual_seed(0)
x = torch.randn(800, 10)
labels = (x[:, 3] > 0).long() + 2 * (x[:, 7] > 0).long()
separable = vision_probe.fit_probe(x[:600], labels[:600], x[600:], labels[600:], 4)
noise = torch.randint(0, 4, (800,))
unrelated = vision_probe.fit_probe(x[:600], noise[:600], x[600:], noise[600:], 4)
print(f"probe: carried label {separable:.3f}, unrelated label {unrelated:.3f}")
if separable < 0.9 or not 0.1 < unrelated < 0.4:
    failures += 1

sys.exit(1 if failures else 0)
