"""Python's safetensors package against corl's safetensors I/O (run by util_safetensors_test).

  safetensors_interop.py check PATH   reads a file corl wrote and checks every value and the metadata
  safetensors_interop.py write PATH   writes the same tensors for corl to read back
"""
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def reference_tensors():
    # Keep in step with reference_tensors() in tests/util_safetensors_test.cpp.
    return {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) - 2.5,
        "f16": torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.5, 256.0], dtype=torch.bfloat16),
        "f64": torch.tensor(3.25, dtype=torch.float64),
        "i64": torch.tensor([-1, 1 << 40], dtype=torch.int64),
        "i32": torch.tensor([1, -2, 3, -4], dtype=torch.int32).reshape(2, 2),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }


def check(path):
    loaded = load_file(path)
    expected = reference_tensors()
    if sorted(loaded) != sorted(expected):
        sys.exit(f"{path}: names {sorted(loaded)} != {sorted(expected)}")
    for name, want in expected.items():
        got = loaded[name]
        if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
            sys.exit(f"{path}: tensor {name}: got {got!r}, want {want!r}")
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    if metadata != {"format": "pt", "producer": "corl"}:
        sys.exit(f"{path}: metadata {metadata}")
    print("ok")


def write(path):
    save_file(reference_tensors(), path, metadata={"format": "pt", "producer": "python"})
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "write"):
        sys.exit(__doc__)
    {"check": check, "write": write}[sys.argv[1]](sys.argv[2])
