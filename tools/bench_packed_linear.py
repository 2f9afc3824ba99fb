"""One decoding step's linear layers, LibTorch's product against the packed one (ops::PackedLinear).

Times every linear layer of one decoding step of the default and the 25m decoder
(docs/benchmarks.md) for 8 and 16 rows, on one and two threads: torch.nn.functional.linear,
which rearranges each weight for the GEMM kernel on every call, against mkl::_mkl_linear with a
weight packed once by mkl::_mkl_reorder_linear_weight, the operators corl's PackedLinear calls.

    .venv/bin/python tools/bench_packed_linear.py
"""
import time

import torch

SIZES = {  # hidden, intermediate, layers, gen-head hidden, image vocabulary
    "25m": (512, 1376, 8, 512, 4096),
    "default": (192, 512, 4, 192, 512),
}


def best_time(work, calls=30, rounds=5):
    for _ in range(3):
        work()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            work()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main():
    torch.manual_seed(0)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, (hidden, inter, layers, head, vocab) in SIZES.items():
            layer = [(hidden, hidden)] * 4 + [(hidden, inter)] * 2 + [(inter, hidden)]
            weights = [torch.randn(n, k) for _ in range(layers) for (k, n) in layer]
            weights += [torch.randn(head, hidden), torch.randn(vocab, head)]
            for rows in (8, 16):
                xs = [torch.randn(rows, w.shape[1]) for w in weights]
                packed = [torch.ops.mkl._mkl_reorder_linear_weight(w, rows) for w in weights]

                def plain():
                    for x, w in zip(xs, weights):
                        torch.nn.functional.linear(x, w)

                def packed_step():
                    for x, w, p in zip(xs, weights, packed):
                        torch.ops.mkl._mkl_linear(x, p, w, None, rows)

                t_plain, t_packed = best_time(plain), best_time(packed_step)
                print(f"{threads} thread(s), {name}, {rows} rows: linear {t_plain * 1e3:.3f} ms, "
                      f"packed {t_packed * 1e3:.3f} ms, {t_plain / t_packed:.2f}x", flush=True)


if __name__ == "__main__":
    main()
