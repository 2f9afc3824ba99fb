#include "corl/model/ulm.h"

#include <stdexcept>

namespace corl::model {

UnifiedModelImpl::UnifiedModelImpl(const ModelConfig& c) : config(c) {
  check(c);
  vision_model = register_module("vision_model", SiglipVisionModel(c));
  aligner = register_module("aligner", Aligner(c.vision_hidden_size, c.hidden_size, c.aligner_depth,
                                               c.aligner_hidden_act));
  gen_embed =
      register_module("gen_embed", torch::nn::Embedding(c.image_vocab_size, c.gen_embed_dim));
  gen_aligner = register_module("gen_aligner", Aligner(c.gen_embed_dim, c.hidden_size,
                                                       c.gen_aligner_depth, c.gen_hidden_act));
  gen_head =
      register_module("gen_head", GenHead(c.hidden_size, c.image_vocab_size, c.gen_hidden_act));
  language_model = register_module("language_model", LlamaForCausalLM(c));
}

torch::Tensor UnifiedModelImpl::embed_image_codes(const torch::Tensor& codes) {
  return gen_aligner(gen_embed(codes));
}

torch::Tensor UnifiedModelImpl::embed(const Batch& host_batch) {
  const bool understanding = host_batch.understanding.any().item<bool>();
  const bool generation = host_batch.generation.any().item<bool>();
  const Batch batch = to_device(host_batch, language_model->model->embed_tokens->weight.device());
  auto embeddings = language_model->model->embed_tokens(batch.input_ids);
  if (understanding) {
    if (!batch.images.defined()) {
      throw std::invalid_argument("embed: the batch has image positions but no images");
    }
    const auto features = aligner(vision_model(batch.images));  // [N, P, hidden]
    embeddings = embeddings.masked_scatter(batch.understanding.unsqueeze(-1),
                                           features.to(embeddings.scalar_type()));
  }
  if (generation) {
    // Embedding every position's code and selecting keeps the shapes static; the codes outside
    // generation positions are 0 and their embeddings are discarded.
    const auto codes = embed_image_codes(batch.codes).to(embeddings.scalar_type());
    embeddings = torch::where(batch.generation.unsqueeze(-1), codes, embeddings);
  }
  return embeddings;
}

torch::Tensor UnifiedModelImpl::hidden_states(const torch::Tensor& embeddings,
                                              const torch::Tensor& attention_mask,
                                              const torch::Tensor& position_ids, KVCache* cache) {
  // Masks and positions may come from a host batch; the decoder runs where the embeddings are.
  return language_model->model->forward(embeddings, attention_mask.to(embeddings.device()),
                                        position_ids.to(embeddings.device()), cache);
}

torch::Tensor UnifiedModelImpl::decode_step(const torch::Tensor& embeddings,
                                            const torch::Tensor& position_ids, KVCache& cache) {
  return language_model->model->decode_step(embeddings, position_ids, cache);
}

torch::Tensor UnifiedModelImpl::text_logits(const torch::Tensor& hidden) {
  return language_model->logits(hidden);
}

torch::Tensor UnifiedModelImpl::image_logits(const torch::Tensor& hidden) {
  return gen_head(hidden);
}

Losses supervised_losses(UnifiedModel& model, const Batch& batch) {
  const auto hidden =
      model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  Losses losses;
  auto head_loss = [&](const torch::Tensor& targets, bool text, int64_t& count) {
    const auto rows = targets.ne(kIgnore);
    count = rows.sum().item<int64_t>();
    if (count == 0) return torch::zeros({}, hidden.options());
    // Only the positions with a target go through the (large) head.
    const auto selected = hidden.index({rows});
    const auto logits = text ? model->text_logits(selected) : model->image_logits(selected);
    return torch::cross_entropy_loss(logits.to(torch::kFloat32), targets.index({rows}));
  };
  losses.text = head_loss(batch.text_targets, true, losses.text_tokens);
  losses.image = head_loss(batch.image_targets, false, losses.image_tokens);
  return losses;
}

}  // namespace corl::model
