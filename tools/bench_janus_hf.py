"""transformers' half of the side-by-side benchmark (scripts/bench_transformers.sh), and its table.

    bench_janus_hf.py make SIZE DIR [--layers N]  a random Janus checkpoint (default, 25m or 1b)
                                             in DIR, with N decoder layers instead of SIZE's
    bench_janus_hf.py measure DIR INPUTS [--threads 2] [--batches 4,8] [--repeats 3]
                      [--answer-tokens 32] [--cfg 5]
    bench_janus_hf.py machine [--threads 2]  fp32 matmul rate and memory bandwidth (JSON)
    bench_janus_hf.py describe DIR INPUTS    sizes and FLOPs the rooflines need (JSON)
    bench_janus_hf.py profile TRACE          self time per operator of bench_janus --profile
    bench_janus_hf.py report RESULTS.json    the table, ratios and roofline fractions
    bench_janus_hf.py copy-bandwidth         a GPU's device-to-device copy bandwidth (JSON)
    bench_janus_hf.py gpu-report RESULTS.json  the Janus-Pro-1B table on a GPU
                                             (scripts/bench_janus_gpu.sh) against corl's
                                             targets

`make` builds transformers' JanusForConditionalGeneration at one of two sizes: `default` is the
embedded default's (decoder hidden 192, 4 layers, 64 codes per image from a 512-code book) and
`25m` has a decoder of about 25M parameters (hidden 512, 8 layers, 256 codes, 4,096-code book).
The VQ has GroupNorm(32), as transformers hard-codes it. `measure` times what bench_janus times
(tools/bench_janus.cpp) on the token ids it wrote to INPUTS, the way transformers does it:
`generate(generation_mode="image")` (CFG, static KV cache, multinomial sampling) then
`decode_image_tokens`, `generate()` for answers, and forward + backward of the log-probs.
"""

import argparse
import copy
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

SIZES = {
    "default": dict(hidden=192, layers=4, heads=6, kv_heads=2, intermediate=512,
                    vision_size=64, patch=8, vision_hidden=128, codes_side=8, codebook=512,
                    vq_multiplier=[1, 1, 2, 4]),
    "25m": dict(hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1376,
                vision_size=256, patch=16, vision_hidden=256, codes_side=16, codebook=4096,
                vq_multiplier=[1, 1, 2, 2, 4]),
    # Janus-Pro-1B's real widths (deepseek-community/Janus-Pro-1B's config.json): a 24-layer
    # LLaMA of hidden 2048 over a 102,400-token vocabulary, SigLIP-L at 384 pixels, the 16,384-code
    # VQ with 576 codes an image. Random weights: `make 1b DIR --device cuda` builds it on the GPU
    # and saves it in bf16.
    "1b": dict(hidden=2048, layers=24, heads=16, kv_heads=16, intermediate=5632,
               vision_size=384, patch=16, vision_hidden=1024, vision_layers=24, vision_heads=16,
               mlp_ratio=4.0, codes_side=24, codebook=16384, vq_multiplier=[1, 1, 2, 2, 4],
               vq_embed=8, vq_latent=256, vq_base=128, vq_res_blocks=2, vocab=102400,
               max_positions=16384),
}


def make(size, out, device="cpu", layers=None):
    from janus_hf_reference import DEEPSEEK_SPLITS, SPECIAL, train_tokenizer
    from tokenizers import Regex, pre_tokenizers
    from transformers import JanusConfig, JanusForConditionalGeneration, JanusImageProcessorPil

    s = dict(SIZES[size])
    if layers:
        s["layers"] = layers
    torch.manual_seed(0)
    deepseek = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in DEEPSEEK_SPLITS] +
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer = train_tokenizer(deepseek, 420)
    tokenizer.save_pretrained(out)
    ids = tokenizer.convert_tokens_to_ids
    tokens = s["codes_side"] ** 2
    assert (s["vision_size"] // s["patch"]) ** 2 == tokens
    config = JanusConfig(
        text_config=dict(model_type="llama", vocab_size=s.get("vocab", len(tokenizer)),
                         hidden_size=s["hidden"],
                         intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
                         num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"],
                         max_position_embeddings=s.get("max_positions", 1024), rms_norm_eps=1e-6,
                         rope_theta=10000.0,
                         bos_token_id=ids(SPECIAL[0]), eos_token_id=ids(SPECIAL[1]),
                         pad_token_id=ids(SPECIAL[2])),
        vision_config=dict(image_size=s["vision_size"], patch_size=s["patch"],
                           hidden_size=s["vision_hidden"],
                           num_hidden_layers=s.get("vision_layers", 2),
                           num_attention_heads=s.get("vision_heads", 4),
                           mlp_ratio=s.get("mlp_ratio", 2.0), projection_dim=s["hidden"],
                           hidden_act="gelu", num_image_tokens=tokens, depth=2),
        vq_config=dict(embed_dim=s.get("vq_embed", 8), num_embeddings=s["codebook"],
                       latent_channels=s.get("vq_latent", 64), base_channels=s.get("vq_base", 32),
                       channel_multiplier=s["vq_multiplier"],
                       num_res_blocks=s.get("vq_res_blocks", 1),
                       num_patches=s["codes_side"], projection_dim=s["hidden"],
                       image_token_embed_dim=s["hidden"], num_hidden_layers=2,
                       hidden_act="gelu"),
        image_token_id=ids("<image_placeholder>"), tie_word_embeddings=False)
    with torch.device(device):
        model = JanusForConditionalGeneration(config).eval()
    with torch.no_grad():  # random init leaves norms at 1: perturb every tensor
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    if device != "cpu":
        model = model.to(torch.bfloat16)  # a 2B-parameter folder saved as the release is, in bf16
    model.save_pretrained(out)
    JanusImageProcessorPil(size={"height": s["vision_size"], "width": s["vision_size"]},
                           image_mean=[0.5, 0.5, 0.5],
                           image_std=[0.5, 0.5, 0.5]).save_pretrained(out)


def synchronize():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def best_of(repeats, work):
    work()
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def measure(args):
    from transformers import JanusForConditionalGeneration

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    model = JanusForConditionalGeneration.from_pretrained(args.dir, torch_dtype=dtype)
    model = model.to(device).eval()
    with open(args.inputs, encoding="utf-8") as f:
        inputs = json.load(f)
    batches = args.batches
    b2 = batches[-1]
    config = model.config
    tokens = config.vision_config.num_image_tokens
    size = config.vision_config.image_size
    out = {"threads": args.threads, "batches": batches, "image_tokens": tokens,
           "decoder_parameters": sum(p.numel() for p in model.model.language_model.layers.parameters())}

    out["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    out["dtype"] = args.dtype
    t2i = torch.tensor([inputs["t2i"]], device=device)
    # The prompt ends in <begin_of_image> after <bos>; the unconditional row pads the words.
    image_config = copy.deepcopy(model.generation_config)
    image_config.bos_token_id = inputs["t2i"][0]
    image_config.pad_token_id = inputs["t2i_unconditional"][1]
    image_config.generation_kwargs = {"boi_token_id": inputs["t2i"][-1]}
    common = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)

    def images(rows):
        with torch.no_grad():
            codes = model.generate(t2i, attention_mask=torch.ones_like(t2i), generation_mode="image",
                                   guidance_scale=args.cfg, num_return_sequences=rows,
                                   generation_config=image_config, **common)
            pixels = model.decode_image_tokens(codes)  # [rows, H, W, 3] in [-1, 1]
            # RGB bytes on the host, as corl's rollouts hand them to the rewards
            return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()

    times = {str(b): best_of(args.repeats, lambda b=b: images(b)) for b in batches}
    out["image_seconds"] = times
    out["images_per_s"] = {str(b): b / times[str(b)] for b in batches}

    mm2t = inputs["mm2t"]
    pixels = (torch.rand(1, 3, size, size) * 2 - 1).to(device, dtype)

    def answers(rows):
        ids = torch.tensor([mm2t] * rows, device=device)
        with torch.no_grad():
            return model.generate(ids, attention_mask=torch.ones_like(ids),
                                  pixel_values=pixels.expand(rows, -1, -1, -1),
                                  max_new_tokens=args.answer_tokens,
                                  min_new_tokens=args.answer_tokens, **common)

    answer_times = {str(b): best_of(args.repeats, lambda b=b: answers(b)) for b in batches}
    produced = answers(b2).shape[1] - len(mm2t)
    assert produced == args.answer_tokens, produced
    out["answer_tokens_per_s"] = b2 * args.answer_tokens / answer_times[str(b2)]
    out["answer_seconds"] = answer_times
    with_marginals(out, args.answer_tokens)
    if args.no_update:
        print(json.dumps(out))
        return

    model.train()
    prompt = torch.tensor([inputs["t2i"]] * b2)
    codes = torch.randint(0, config.vq_config.num_embeddings, (b2, tokens))
    p = prompt.shape[1]

    def image_update():
        model.zero_grad()
        embeds = torch.cat([model.get_input_embeddings()(prompt),
                            model.prepare_embeddings_for_image_generation(codes)], 1)
        hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
        logits = model.model.generation_head(hidden[:, p - 1:-1]).float()
        logits.log_softmax(-1).gather(-1, codes.unsqueeze(-1)).sum().backward()

    out["update_image_tokens_per_s"] = b2 * (p + tokens) / best_of(args.repeats, image_update)

    from tokenizers import Tokenizer
    words = Tokenizer.from_file(os.path.join(args.dir, "tokenizer.json")).encode(
        "How many circles are in the image? Answer with a number.", add_special_tokens=False).ids
    completions = torch.tensor([[words[(r + t) % len(words)] for t in range(args.answer_tokens)]
                                for r in range(b2)])
    full = torch.cat([torch.tensor([mm2t] * b2), completions], 1)
    batch_pixels = pixels.expand(b2, -1, -1, -1).contiguous()
    t = args.answer_tokens

    def answer_update():
        model.zero_grad()
        logits = model(input_ids=full, pixel_values=batch_pixels, logits_to_keep=t + 1).logits
        logp = logits[:, :-1].float().log_softmax(-1).gather(-1, completions.unsqueeze(-1))
        logp.sum().backward()

    out["update_answer_tokens_per_s"] = b2 * full.shape[1] / best_of(args.repeats, answer_update)
    print(json.dumps(out))


def slope_fit(times):
    """Least-squares slope of time against batch size over {batch: seconds} (two or more sizes),
    with its standard error (None with two sizes: a line through two points has no residual)."""
    xs = [float(b) for b in times]
    ys = [times[b] for b in times]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    if n < 3:
        return slope, None
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    return slope, (residual / (n - 2) / sxx) ** 0.5


def marginal(times, per_row=1.0):
    """The marginal seconds per row (times: {batch: seconds}) and, as a rate, rows x per_row per
    second, with a guard against noise: a slope that is not positive, or (two sizes) whose added
    time is under a tenth of the smallest batch's time, or (three or more) under twice its
    standard error, is reported as None with the reason, never as a rate."""
    slope, error = slope_fit(times)
    low, high = min(times, key=float), max(times, key=float)
    added = slope * (float(high) - float(low))
    out = {"seconds_per_row": slope, "error": error}
    if slope <= 0 or (error is None and added < 0.1 * times[low]) or \
            (error is not None and slope < 2 * error):
        out.update(rate=None, note=f"slope {slope:.4g} s/row" +
                   (f" +- {error:.2g}" if error is not None else
                    f", {added:.4g} s added over {times[low]:.4g} s") + ": within noise")
    else:
        out["rate"] = per_row / slope
    return out


def with_marginals(r, answer_tokens):
    """Fills the marginal measures of one side's results from its raw times (both sides the same
    way): seconds per image, and answer tokens per second."""
    if "image_seconds" in r:
        r["image_seconds_per_image"] = marginal(r["image_seconds"])["seconds_per_row"]
    if "answer_seconds" in r:
        m = marginal(r["answer_seconds"], answer_tokens)
        r["answer_marginal_tokens_per_s"] = m["rate"]
        if m["rate"] is None:
            r["answer_marginal_note"] = m["note"]
    return r


def machine(args):
    """The rates a roofline is drawn with: fp32 matmul FLOP/s and streaming read bandwidth."""
    torch.set_num_threads(args.threads)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    matmul = best_of(5, lambda: torch.mm(a, b))
    big = torch.ones(64 * 1024 * 1024)  # 256 MiB, far past any cache
    read = best_of(5, lambda: big.sum())
    print(json.dumps({"matmul_flops": 2 * n ** 3 / matmul, "read_bytes_per_s": big.numel() * 4 / read,
                      "threads": args.threads}))


def attention_flops(t, context):
    """q.k and p.v of one query against `context` keys."""
    return 4 * t["layers"] * t["heads"] * (t["hidden"] // t["heads"]) * context


def cache_bytes(t, context):
    """fp32 keys and values one query reads."""
    return 4 * 2 * t["layers"] * t["kv_heads"] * (t["hidden"] // t["heads"]) * context


def rooflines(d, r, rates):
    """Each measure at the machine's limits: every FLOP at the measured fp32 matmul rate plus
    every byte that must come from memory at the measured read bandwidth (the two are not
    overlapped on a CPU: a decode step's matrix products and its attention run one after
    the other)."""
    t = d["text"]
    b2 = r["corl"]["batches"][-1]
    answer_tokens = r["answer_tokens"]
    at_limit = lambda flops, bytes_: flops / rates["matmul_flops"] + bytes_ / rates["read_bytes_per_s"]
    # Images, per image as a marginal cost: a step reads the weights once for the whole batch,
    # so only the KV cache's bytes grow with the images.
    rows = 2 if r["cfg"] != 1 else 1
    flops = bytes_ = 0.0
    for step in range(d["image_tokens"]):
        context = r["prompt_tokens"] + step + 1
        flops += 2 * (d["decoder_parameters"] + d["generation_parameters"]) + attention_flops(t, context)
        bytes_ += cache_bytes(t, context)
    image = at_limit(rows * flops + d["vq_decode_flops"], rows * bytes_)
    # Answers, G = b2 to one question: one prefill (its FLOPs counted), then every step reads
    # the decoder's and the head's weights once and each row's cache.
    flops, bytes_ = d["answer_prefill_flops"], 0.0
    for step in range(answer_tokens):
        context = d["answer_prefix_tokens"] + step + 1
        flops += b2 * (2 * (d["decoder_parameters"] + d["lm_head_parameters"]) +
                       attention_flops(t, context))
        bytes_ += 4 * (d["decoder_parameters"] + d["lm_head_parameters"]) + b2 * cache_bytes(t, context)
    answer = at_limit(flops, bytes_)
    return {
        "image_seconds_per_image": image,
        "answer_tokens_per_s": b2 * answer_tokens / answer,
        # Updates: forward and backward FLOPs of one row, counted, times the batch.
        "update_image_tokens_per_s": rates["matmul_flops"] / d["update_image_flops_per_token"],
        "update_answer_tokens_per_s": rates["matmul_flops"] / d["update_answer_flops_per_token"],
    }


def describe(args):
    """What the rooflines need of a checkpoint: sizes, parameter counts, and the FLOPs of the VQ
    decode, of an answer's prefill and of the updates' forward and backward (counted by
    torch's FlopCounterMode on transformers' modules, one row each)."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import JanusConfig, JanusForConditionalGeneration

    if args.sizes_only:  # the sizes and counts alone, from a model with no storage
        with torch.device("meta"):
            model = JanusForConditionalGeneration(JanusConfig.from_pretrained(args.dir))
    else:
        model = JanusForConditionalGeneration.from_pretrained(args.dir).eval()
    with open(args.inputs, encoding="utf-8") as f:
        inputs = json.load(f)
    t = model.config.text_config
    n = model.config.vision_config.num_image_tokens
    size = model.config.vision_config.image_size
    m = model.model
    sizes = {
        "text": {"hidden": t.hidden_size, "layers": t.num_hidden_layers,
                 "heads": t.num_attention_heads, "kv_heads": t.num_key_value_heads},
        "image_tokens": n,
        "decoder_parameters": sum(p.numel() for p in m.language_model.layers.parameters()),
        # per generated code: the head that scores it and the aligner that embeds it
        "generation_parameters": sum(p.numel() for p in m.generation_head.parameters()) +
        sum(p.numel() for p in m.generation_aligner.parameters()),
        "lm_head_parameters": model.lm_head.weight.numel()}
    if args.sizes_only:
        print(json.dumps(sizes))
        return

    def flops_of(work):
        counter = FlopCounterMode(display=False)
        with counter:
            work()
        return counter.get_total_flops()

    with torch.no_grad():
        vq = flops_of(lambda: model.decode_image_tokens(torch.zeros(1, n, dtype=torch.long)))
        mm2t = torch.tensor([inputs["mm2t"]])
        pixels = torch.zeros(1, 3, size, size)
        prefill = flops_of(lambda: model(input_ids=mm2t, pixel_values=pixels, logits_to_keep=1))
    prompt = torch.tensor([inputs["t2i"]])
    codes = torch.zeros(1, n, dtype=torch.long)

    def image_update():
        embeds = torch.cat([model.get_input_embeddings()(prompt),
                            model.prepare_embeddings_for_image_generation(codes)], 1)
        hidden = m.language_model(inputs_embeds=embeds).last_hidden_state
        m.generation_head(hidden[:, prompt.shape[1] - 1:-1]).float().log_softmax(-1).sum().backward()

    words = [i for i in inputs["mm2t"] if i != model.config.image_token_id]
    completion = [words[t % len(words)] for t in range(args.answer_tokens)]
    answer = torch.cat([mm2t, torch.tensor([completion])], 1)

    def answer_update():
        logits = model(input_ids=answer, pixel_values=pixels, logits_to_keep=args.answer_tokens + 1).logits
        logits.float().log_softmax(-1).sum().backward()

    print(json.dumps({
        **sizes,
        "vq_decode_flops": vq,
        "answer_prefix_tokens": mm2t.shape[1],
        "answer_prefill_flops": prefill,
        "update_image_flops_per_token": flops_of(image_update) / (prompt.shape[1] + n),
        "update_answer_flops_per_token": flops_of(answer_update) / answer.shape[1]}))


def profile(args):
    """Self time per operator of a Chrome trace (bench_janus --profile), largest first."""
    with open(args.trace, encoding="utf-8") as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    by_thread = {}
    for e in events:
        if e.get("ph") == "X":
            by_thread.setdefault(e.get("tid"), []).append(e)
    self_time, calls = {}, {}
    for spans in by_thread.values():
        spans.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, event, time of its children]
        def close(until):
            while stack and stack[-1][0] <= until:
                end, e, children = stack.pop()
                self_time[e["name"]] = self_time.get(e["name"], 0) + e["dur"] - children
                calls[e["name"]] = calls.get(e["name"], 0) + 1
                if stack:
                    stack[-1][2] += e["dur"]
        for e in spans:
            close(e["ts"])
            stack.append([e["ts"] + e["dur"], e, 0])
        close(float("inf"))
    total = sum(self_time.values())
    print(f"{total / 1e6:.3f} s of operator time")
    for name, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{100 * t / total:5.1f}%  {t / 1e6:7.3f} s  {calls[name]:7d} calls  {name}")


# (label, key, whether lower is better)
MEASURES = [("s per image (marginal)", "image_seconds_per_image", True),
            ("answer tokens/s", "answer_tokens_per_s", False),
            ("answer tokens/s (marginal)", "answer_marginal_tokens_per_s", False),
            ("update tokens/s, images", "update_image_tokens_per_s", False),
            ("update tokens/s, answers", "update_answer_tokens_per_s", False)]


def fmt(value):
    return "n/a" if value is None else f"{value:.4g}"


def report(args):
    with open(args.results, encoding="utf-8") as f:
        results = json.load(f)
    rates = results["machine"]
    print(f"machine: {results['cpu']}, {rates['threads']} threads; fp32 matmul "
          f"{rates['matmul_flops'] / 1e9:.0f} GFLOP/s, read bandwidth "
          f"{rates['read_bytes_per_s'] / 1e9:.1f} GB/s\n")
    header = ("| size | measure | corl | transformers | corl / transformers |\n"
              "|---|---|---|---|---|")
    print(header)
    for size, r in results["sizes"].items():
        c = with_marginals(r["corl"], r["answer_tokens"])
        h = with_marginals(r["transformers"], r["answer_tokens"])
        for label, key, lower in MEASURES:
            if c.get(key) is None or h.get(key) is None:
                notes = "; ".join(f"{side}: {x['answer_marginal_note']}" for side, x in
                                  (("corl", c), ("transformers", h)) if "answer_marginal_note" in x)
                print(f"| {size} | {label} | {fmt(c.get(key))} | {fmt(h.get(key))} | "
                      f"n/a ({notes or 'not measured'}) |")
                continue
            ratio = h[key] / c[key] if lower else c[key] / h[key]
            print(f"| {size} | {label} | {c[key]:.4g} | {h[key]:.4g} | {ratio:.2f}x |")
    print("\n| size | measure | roofline | corl's fraction of it |\n|---|---|---|---|")
    for size, r in results["sizes"].items():
        bound = rooflines(r["describe"], r, rates)
        for label, key, lower in MEASURES:
            if key not in bound or r["corl"].get(key) is None:
                continue
            c = r["corl"][key]
            fraction = bound[key] / c if lower else c / bound[key]
            print(f"| {size} | {label} | {bound[key]:.4g} | {100 * fraction:.0f}% |")


def copy_bandwidth(args):
    """Device-to-device copy of 2 GiB, bytes read + written per second: the ceiling a decode
    step's reads are held to (as bench_kernels measures it)."""
    src = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    seconds = best_of(10, lambda: dst.copy_(src))
    print(json.dumps({"copy_bytes_per_s": 2 * src.numel() / seconds,
                      "device": torch.cuda.get_device_name(0)}))


def gpu_report(args):
    """Janus-Pro-1B widths on one GPU, bf16: corl against transformers, and corl's targets."""
    with open(args.results, encoding="utf-8") as f:
        r = json.load(f)
    c, h, d = r["corl"], r["transformers"], r["describe"]
    bandwidth = r["copy"]["copy_bytes_per_s"]
    t = d["text"]
    head_dim = t["hidden"] // t["heads"]
    print(f"device: {r['copy']['device']}; copy bandwidth {bandwidth / 1e9:.0f} GB/s; "
          f"bf16; {d['decoder_parameters'] / 1e9:.3f} B decoder parameters, "
          f"{d['image_tokens']} codes an image, CFG {r['cfg']}\n")
    print("| measure | batch | corl | transformers | corl / transformers | target |")
    print("|---|---|---|---|---|---|")
    for b in c["image_seconds"]:
        ci, hi = int(b) / c["image_seconds"][b], int(b) / h["image_seconds"][b]
        ratio = ci / hi
        print(f"| images/s (sampling + VQ decode to RGB) | {b} | {ci:.3g} | {hi:.3g} | "
              f"{ratio:.2f}x | >= 3x: {'met' if ratio >= 3 else 'missed'} |")
    for b in c["answer_seconds"]:
        tokens = int(b) * r["answer_tokens"]
        ca, ha = tokens / c["answer_seconds"][b], tokens / h["answer_seconds"][b]
        print(f"| answer tokens/s ({r['answer_tokens']} each, one question) | {b} | {ca:.4g} | "
              f"{ha:.4g} | {ca / ha:.2f}x | |")
    # The decode step's reads: every decoder weight, the generation head and aligner once a step
    # (bf16), and each row's keys and values up to its position (2 rows an image under CFG).
    rows_per_image = 2 if r["cfg"] != 1 else 1
    weights = 2 * (d["decoder_parameters"] + d["generation_parameters"])
    print("\n| batch | sampling s (graph) | s per decode step | bytes read per step | "
          "share of copy bandwidth | eager sampling s | target |")
    print("|---|---|---|---|---|---|---|")
    for b, seconds in c["generation_seconds"].items():
        rows = rows_per_image * int(b)
        steps = d["image_tokens"]
        cache = sum(2 * 2 * t["layers"] * t["kv_heads"] * head_dim * rows *
                    (r["prompt_tokens"] + k + 1) for k in range(steps)) / steps
        step = seconds / steps  # the prefill's share included: a bound from below on the share
        share = (weights + cache) / step / bandwidth
        eager = c.get("generation_seconds_eager", {}).get(b)
        target = (f">= 50%: {'met' if share >= 0.5 else 'missed'}"
                  if b == max(c["generation_seconds"], key=int) else "")
        print(f"| {b} | {seconds:.3f} | {1e3 * step:.2f} ms | {(weights + cache) / 1e9:.2f} GB | "
              f"{100 * share:.0f}% | {'' if eager is None else f'{eager:.3f}'} | {target} |")
    if r.get("unified"):
        u = r["unified"]
        print(f"\nunified stage, {u['what']}: {u['seconds_per_step']:.1f} s per step "
              f"(rollout {u['rollout']:.1f} s, rewards {u['reward']:.1f} s, update {u['update']:.1f} s); "
              f"peak GPU memory {u['peak_mib'] / 1024:.1f} GiB against docs/janus.md's "
              f"{u['estimate_gb']:.1f} GB ({u['estimate_how']}): "
              f"{100 * (u['peak_mib'] * 2**20 / 1e9 / u['estimate_gb'] - 1):+.0f}% "
              f"(target within 15%)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make")
    p.add_argument("size", choices=sorted(SIZES))
    p.add_argument("dir")
    p.add_argument("--device", default="cpu", help="where the random weights are made (cuda: bf16)")
    p.add_argument("--layers", type=int, help="decoder layers (default: the size's)")
    p = sub.add_parser("measure")
    p.add_argument("dir")
    p.add_argument("inputs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--answer-tokens", type=int, default=32)
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--no-update", action="store_true", help="time the rollouts only")
    p = sub.add_parser("machine")
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("describe")
    p.add_argument("dir")
    p.add_argument("inputs")
    p.add_argument("--answer-tokens", type=int, default=32)
    p.add_argument("--sizes-only", action="store_true", help="no FLOP counts (no weights read)")
    p = sub.add_parser("profile")
    p.add_argument("trace")
    p.add_argument("--top", type=int, default=20)
    p = sub.add_parser("report")
    p.add_argument("results")
    sub.add_parser("copy-bandwidth")
    p = sub.add_parser("gpu-report")
    p.add_argument("results")
    args = parser.parse_args()
    if args.command == "make":
        make(args.size, args.dir, args.device, args.layers)
    elif args.command == "measure":
        measure(args)
    elif args.command == "machine":
        machine(args)
    elif args.command == "describe":
        describe(args)
    elif args.command == "profile":
        profile(args)
    elif args.command == "copy-bandwidth":
        copy_bandwidth(args)
    elif args.command == "gpu-report":
        gpu_report(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
