"""Reference outputs of a tiny Hugging Face Janus checkpoint, for the C++ parity test.

    janus_hf_reference.py OUT_DIR

Builds a small random transformers `JanusForConditionalGeneration`, saves it with
`save_pretrained` (sharded, so that the index file is exercised) into OUT_DIR/model together with a
byte-level BPE `tokenizer.json` (trained here with the `tokenizers` library, pre-tokenized the way
DeepSeek-LLM's tokenizer is) and a `preprocessor_config.json`. A second tokenizer with GPT-2's
built-in ByteLevel regex goes to OUT_DIR/gpt2_tokenizer. Then records, in
OUT_DIR/reference.safetensors and OUT_DIR/reference.json:

  text logits of an image + question prompt (batch of 2 images),
  image-code logits of a text-to-image prompt followed by image codes,
  VQ decode of fixed codes (before any clamping),
  pixel values of the image processor for two images,
  token ids of a set of strings under both tokenizers (no special tokens added).

Exits with status 77 when transformers or tokenizers is not installed (the test then skips).
"""

import json
import os
import sys

try:
    import numpy as np
    import torch
    import transformers
    from safetensors.torch import save_file
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (JanusConfig, JanusForConditionalGeneration, JanusImageProcessorPil,
                              PreTrainedTokenizerFast)
except ImportError as error:  # the C++ test skips on this status
    print(f"missing Python package: {error}", file=sys.stderr)
    sys.exit(77)

SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<image_placeholder>",
           "<begin_of_image>", "<end_of_image>", "<|User|>", "<|Assistant|>"]

CORPUS = [
    "Describe the image. There are two red circles and a blue square.",
    "How many triangles are in the picture? Answer with a number.",
    "a yellow triangle left of a green circle", "The answer is 42, not 7.",
    "Coordinates: (12, 34) -> [56; 78]!", "Ünïcödé wörds and naïve café déjà vu",
    "中文字符和数字 2025 年", "한국어 문장입니다", "emoji 🙂 and tabs\tand\nnewlines",
    "   leading spaces and trailing   ", "<think>reasoning</think><answer>B</answer>",
] * 20

STRINGS = [
    "Describe the image.", "two red circles", "How many squares? 3", "  spaced   out  ",
    "line one\nline two\r\nthree", "Ünïcödé naïve café", "中文 2025 年 한국어", "emoji 🙂👍🏽 mix",
    "<|User|>: <begin_of_image><image_placeholder><end_of_image> What? <|Assistant|>:",
    "<think>a</think><answer>C</answer>", "tabs\tand trailing   ", "12345678", "",
    "unseen zebra quokka xylophone", "punctuation!!! ... ??? ---",
    "don't you're I'll we've", "non\u00a0breaking\u2003spaces", "\n\n\n  \n", "<|User|><|Assistant|>",
    "<|Use partial <begin_of_imag", "Ｆｕｌｌｗｉｄｔｈ！", "x\u0301 combining", "  ",
]

# DeepSeek-LLM's pre-tokenizer, with a shorter letter class.
DEEPSEEK_SPLITS = [
    r"[\r\n]",
    r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯ]+",
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+$",
    r"[一-龥ࠀ-一가-퟿]+",
]


def train_tokenizer(pre_tokenizer, vocab_size):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=SPECIAL[0],
                                   eos_token=SPECIAL[1], pad_token=SPECIAL[2])


def main(out):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model_dir = os.path.join(out, "model")

    deepseek = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in DEEPSEEK_SPLITS] +
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer = train_tokenizer(deepseek, 420)
    tokenizer.save_pretrained(model_dir)
    gpt2 = train_tokenizer(pre_tokenizers.ByteLevel(add_prefix_space=False), 400)
    gpt2.save_pretrained(os.path.join(out, "gpt2_tokenizer"))

    ids = lambda name: tokenizer.convert_tokens_to_ids(name)
    config = JanusConfig(
        text_config=dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=64,
                         intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
                         rope_theta=5000.0, bos_token_id=ids(SPECIAL[0]),
                         eos_token_id=ids(SPECIAL[1]), pad_token_id=ids(SPECIAL[2])),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2,
                           num_attention_heads=4, mlp_ratio=2.0, projection_dim=64,
                           hidden_act="gelu", num_image_tokens=16, depth=2),
        vq_config=dict(embed_dim=8, num_embeddings=96, latent_channels=32, base_channels=32,
                       channel_multiplier=[1, 1, 2], num_res_blocks=1, projection_dim=64,
                       image_token_embed_dim=64, num_hidden_layers=2, hidden_act="gelu"),
        image_token_id=ids("<image_placeholder>"), tie_word_embeddings=False)
    model = JanusForConditionalGeneration(config).eval()
    # Random init leaves norms at 1 and biases at 0; perturb every tensor so each one matters.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(model_dir, max_shard_size="200KB")
    JanusImageProcessorPil(size={"height": 32, "width": 32}, image_mean=[0.5, 0.5, 0.5],
                           image_std=[0.5, 0.5, 0.5]).save_pretrained(model_dir)

    # Reload from disk, so the reference is what the saved folder computes.
    model = JanusForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = JanusImageProcessorPil.from_pretrained(model_dir)
    tensors = {}
    with torch.no_grad():
        # Understanding: two images, one question.
        prompt = ([ids(SPECIAL[0])] + tokenizer.encode("<|User|>: ", add_special_tokens=False) +
                  [ids("<begin_of_image>")] + [ids("<image_placeholder>")] * 16 +
                  [ids("<end_of_image>")] +
                  tokenizer.encode(" How many circles? <|Assistant|>: ", add_special_tokens=False))
        input_ids = torch.tensor([prompt, prompt])
        pixel_values = torch.rand(2, 3, 32, 32) * 2 - 1
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
        tensors.update(mm_input_ids=input_ids, mm_pixel_values=pixel_values, mm_logits=logits)

        # Generation: prompt ending in <begin_of_image>, then image codes through gen_embed.
        t2i = ([ids(SPECIAL[0])] +
               tokenizer.encode("<|User|>: two red circles\n\n<|Assistant|>:",
                                add_special_tokens=False) + [ids("<begin_of_image>")])
        t2i_ids = torch.tensor([t2i])
        codes = torch.randint(0, 96, (1, 16))
        embeds = torch.cat([model.get_input_embeddings()(t2i_ids),
                            model.prepare_embeddings_for_image_generation(codes)], dim=1)
        hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
        tensors.update(t2i_input_ids=t2i_ids, t2i_codes=codes,
                       t2i_image_logits=model.model.generation_head(hidden))

        # VQ decode of fixed codes, before any clamping.
        vq_codes = torch.randint(0, 96, (2, 16))
        tensors.update(vq_codes=vq_codes, vq_decoded=model.model.vqmodel.decode(vq_codes))

    # Image processor: a square image of the model's size and a wide one it pads to a square.
    rng = np.random.default_rng(0)
    for name, shape in [("square", (32, 32, 3)), ("wide", (20, 32, 3))]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
        tensors[f"pre_{name}_image"] = torch.from_numpy(image)
        tensors[f"pre_{name}_pixels"] = pixels.float()

    save_file({k: v.contiguous() for k, v in tensors.items()},
              os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({
            "strings": STRINGS,
            "deepseek_ids": [tokenizer.encode(s, add_special_tokens=False) for s in STRINGS],
            "gpt2_ids": [gpt2.encode(s, add_special_tokens=False) for s in STRINGS],
            "transformers": transformers.__version__,
        }, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
