"""Reads a Janus folder written by corl with transformers and records its outputs.

    janus_hf_roundtrip.py DIR

DIR holds what `corl export --format hf` (or save_janus_hf) wrote, plus inputs.safetensors from
the C++ test. The model is loaded with JanusForConditionalGeneration.from_pretrained; a missing,
unexpected or mis-shaped tensor fails the script. Writes DIR/outputs.safetensors: text logits of
the image + question input, image-code logits of the text-to-image input, and the VQ decode of
fixed codes. Exits with status 77 when transformers is not installed.
"""

import os
import sys

try:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import JanusForConditionalGeneration
except ImportError as error:
    print(f"missing Python package: {error}", file=sys.stderr)
    sys.exit(77)


def main(folder):
    torch.set_num_threads(2)
    model, info = JanusForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"transformers did not load every tensor: {problems}")
    model.eval()
    inputs = load_file(os.path.join(folder, "inputs.safetensors"))
    with torch.no_grad():
        mm = model(input_ids=inputs["mm_input_ids"], pixel_values=inputs["mm_pixel_values"]).logits
        embeds = torch.cat([model.get_input_embeddings()(inputs["t2i_input_ids"]),
                            model.prepare_embeddings_for_image_generation(inputs["t2i_codes"])], 1)
        hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
        image = model.model.generation_head(hidden)
        decoded = model.model.vqmodel.decode(inputs["vq_codes"])
    save_file({"mm_logits": mm.contiguous(), "t2i_image_logits": image.contiguous(),
               "vq_decoded": decoded.contiguous()}, os.path.join(folder, "outputs.safetensors"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
