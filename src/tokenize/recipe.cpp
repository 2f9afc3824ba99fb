#include "corl/tokenize/recipe.h"

#include <stdexcept>

#include "corl/util/error.h"

namespace corl::tokenize {

void bind(config::Schema& s, TokenizerRecipe& r) {
  config::bind(s, r.run);
  auto& t = r.text;
  s.add("text.data", &t.data, "JSON-lines dataset whose prompts, questions and solutions train it");
  s.add("text.vocab_size", &t.vocab_size,
        "Upper bound of the SentencePiece vocabulary size (byte fallback takes 256 of it)")
      .range(300, 1000000);
  s.add("text.model_type", &t.model_type,
        "SentencePiece model type (bpe finds whole words of a small corpus; unigram does not)")
      .choices({"unigram", "bpe"});
  s.add("text.character_coverage", &t.character_coverage,
        "Share of characters covered by pieces; the rest fall back to bytes")
      .range(0.9, 1.0);
  s.add("text.byte_fallback", &t.byte_fallback,
        "Encode characters outside the vocabulary as bytes instead of <unk>");
  s.add("text.skip_bad_rows", &t.skip_bad_rows,
        "Skip (and count) malformed dataset rows instead of stopping at the first");

  auto& i = r.image;
  s.add("image.train", &i.train, "Train the VQ image tokenizer too");
  s.add("image.data", &i.data, "JSON-lines dataset whose images train the VQ tokenizer");
  auto& v = i.vq;
  s.add("image.vq.image_size", &v.image_size, "Image side the VQ tokenizer reads and draws")
      .range(8, 4096);
  s.add("image.vq.channels", &v.channels, "Base width of the encoder and decoder").range(1, 4096);
  s.add("image.vq.channel_mult", &v.channel_mult,
        "Width multiplier per resolution level; each level but the last halves the side")
      .range(1, 64)
      .min_items(1);
  s.add("image.vq.num_res_blocks", &v.num_res_blocks, "Residual blocks per level").range(1, 16);
  s.add("image.vq.z_channels", &v.z_channels, "Width of the encoder's output").range(1, 4096);
  s.add("image.vq.codebook_size", &v.codebook_size, "Codes in the codebook: the image vocabulary")
      .range(2, 1048576);
  s.add("image.vq.codebook_dim", &v.codebook_dim, "Size of each code vector").range(1, 4096);
  s.add("image.vq.norm_groups", &v.norm_groups, "GroupNorm groups (divide every level's width)")
      .range(1, 1024);
  s.add("image.vq.codebook_l2_norm", &v.codebook_l2_norm,
        "L2-normalise codes and encoder outputs before the nearest-code search");
  auto& o = i.optim;
  s.add("image.optim.steps", &o.steps, "Training steps").range(1, 100000000);
  s.add("image.optim.batch_size", &o.batch_size, "Images per step").range(1, 100000);
  s.add("image.optim.learning_rate", &o.learning_rate, "Peak AdamW learning rate").range(0.0, 1.0);
  s.add("image.optim.warmup_steps", &o.warmup_steps, "Linear warm-up steps").range(0, 100000000);
  s.add("image.optim.weight_decay", &o.weight_decay, "AdamW weight decay").range(0.0, 1.0);
  s.add("image.optim.beta", &o.beta, "Commitment loss weight").range(0.0, 100.0);
  s.add("image.optim.codebook_weight", &o.codebook_weight, "Codebook loss weight")
      .range(0.0, 100.0);
  s.add("image.optim.reconstruction_loss", &o.reconstruction_loss, "Reconstruction loss")
      .choices({"mse", "l1"});
  s.add("image.optim.boundary_weight", &o.boundary_weight,
        "Extra weight of the error on pixels along object outlines")
      .range(0.0, 1000.0);
  s.add("image.optim.restart_every", &o.restart_every,
        "Steps between restarts of unused codes (0: none)")
      .range(0, 100000000);
  s.add("image.optim.restart_until", &o.restart_until,
        "Share of the steps after which codes are no longer restarted")
      .range(0.0, 1.0);
  s.add("image.optim.log_every", &o.log_every, "Steps between log lines (0: the end only)")
      .range(0, 100000000);
}

void validate(const TokenizerRecipe& r) {
  try {
    check(r.image.vq);
  } catch (const std::invalid_argument& e) {
    throw RecipeError(std::string("image.vq: ") + e.what());
  }
}

}  // namespace corl::tokenize
