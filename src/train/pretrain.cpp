#include "corl/train/pretrain.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "corl/data/dataset.h"
#include "corl/data/world.h"
#include "corl/model/inputs.h"
#include "corl/model/ulm.h"
#include "corl/tokenize/vq.h"
#include "corl/train/checkpoint.h"
#include "corl/train/evaluate.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"

namespace corl::train {
namespace fs = std::filesystem;

void bind(config::Schema& s, PretrainRecipe& r) {
  config::bind(s, r.run);
  s.add("data.train", &r.data.train, "Training rows (JSON lines, with images)");
  s.add("data.eval", &r.data.eval, "Held-out rows judged at the end");
  s.add("data.skip_bad_rows", &r.data.skip_bad_rows,
        "Skip (and count) malformed rows instead of stopping at the first");
  s.add("tokenizer.path", &r.tokenizer, "Folder with text.model and vq.safetensors");
  model::bind(s, r.model);
  model::bind(s, r.training);
  bind(s, r.optim);
  auto& t = r.train;
  s.add("train.steps", &t.steps, "Optimizer steps").range(1, 100000000);
  s.add("train.t2i_batch", &t.t2i_batch, "Text -> image sequences per micro-batch")
      .range(0, 100000);
  s.add("train.uncond_prob", &t.uncond_prob,
        "Share of text -> image rows trained without their prompt (for classifier-free guidance)")
      .range(0.0, 1.0);
  s.add("train.caption_batch", &t.caption_batch, "Image -> caption sequences per micro-batch")
      .range(0, 100000);
  s.add("train.caption_text", &t.caption_text,
        "What captions teach: the row's prompt, or its scene (every object's colour, shape and "
        "quarter of the image)")
      .choices({"prompt", "scene"});
  s.add("train.qa_batch", &t.qa_batch,
        "Image + question -> <think>/<answer> solution sequences per micro-batch")
      .range(0, 100000);
  s.add("train.image_loss_weight", &t.image_loss_weight, "Weight of the image-token loss")
      .range(0.0, 1000.0);
  s.add("train.checkpoint_every", &t.checkpoint_every, "Steps between checkpoints (0: none)")
      .range(0, 100000000);
  s.add("train.log_every", &t.log_every, "Steps between metric lines").range(1, 100000000);
  bind(s, r.eval);
}

void validate(const PretrainRecipe& r) {
  if (r.train.t2i_batch + r.train.caption_batch + r.train.qa_batch == 0) {
    throw RecipeError("train: t2i_batch, caption_batch and qa_batch are all 0");
  }
  check_schedule(r.optim);
  try {
    model::ModelConfig sizes = r.model;
    model::check(sizes);
  } catch (const std::invalid_argument& e) {
    throw RecipeError(e.what());
  }
}

namespace {

// Everything a step draws from, kept in memory: images once as uint8, their VQ codes once.
struct TrainingSet {
  std::vector<data::Record> records;
  torch::Tensor images;               // [N, 3, H, W] uint8 at the model's image size
  torch::Tensor codes;                // [N, image_tokens] int64
  std::vector<std::string> captions;  // what each row's caption sequence teaches
};

TrainingSet load_training_set(const PretrainRecipe& recipe, tokenize::VQModel& vq) {
  data::ReadOptions read;
  read.resolution = vq->config.image_size;
  read.skip_bad_rows = recipe.data.skip_bad_rows;
  TrainingSet set;
  set.records = data::read_dataset(recipe.data.train, read).records;
  if (set.records.empty()) throw DataError(recipe.data.train + ": no rows to train on");
  const int64_t rows = static_cast<int64_t>(set.records.size());
  for (const auto& r : set.records) {
    if (recipe.train.caption_text == "prompt") {
      set.captions.push_back(r.prompt);
    } else if (r.scene) {
      set.captions.push_back(data::scene_caption(*r.scene));
    } else {
      throw DataError(recipe.data.train + ":" + std::to_string(r.line) +
                      ": row has no scene, which train.caption_text: scene needs");
    }
  }
  const int size = recipe.model.image_size;
  set.images = torch::empty({rows, 3, size, size}, torch::kUInt8);
  for (int64_t i = 0; i < rows; ++i)
    set.images[i].copy_(model::image_bytes(set.records[i].image, size));

  // Codes from the images as read, at the VQ tokenizer's resolution, a chunk at a time: the whole
  // set as floats would take about 1 GB at the default 20,000 images.
  torch::NoGradGuard no_grad;
  vq->eval();
  std::vector<torch::Tensor> codes;
  util::Progress progress("pretrain: image codes", rows, "images");
  constexpr int64_t kChunk = 256;
  for (int64_t start = 0; start < rows; start += kChunk) {
    const int64_t end = std::min(kChunk + start, rows);
    std::vector<cv::Mat> chunk;
    for (int64_t i = start; i < end; ++i) chunk.push_back(set.records[i].image);
    codes.push_back(vq->encode(tokenize::images_to_tensor(chunk)));
    progress.advance(end - start);
  }
  set.codes = torch::cat(codes);
  for (auto& r : set.records) r.image.release();  // kept once, in set.images
  return set;
}

}  // namespace

void pretrain(const PretrainRecipe& recipe, util::RunDir& run, bool resume) {
  const fs::path tokenizer_dir(recipe.tokenizer);
  CheckpointSources sources;
  sources.text_model = (tokenizer_dir / "text.model").string();
  sources.vq = (tokenizer_dir / "vq.safetensors").string();
  const tokenize::TextTokenizer text(sources.text_model);
  auto vq = tokenize::load_vq(sources.vq);

  model::ModelConfig config = recipe.model;
  config.vocab_size = text.vocab_size();
  config.image_vocab_size = vq->config.codebook_size;
  config.image_tokens = vq->config.tokens();
  model::check(config);
  const model::SequenceBuilder builder(text, config);

  log::info("pretrain: reading " + recipe.data.train);
  const TrainingSet set = load_training_set(recipe, vq);
  const int64_t rows = static_cast<int64_t>(set.records.size());

  torch::manual_seed(recipe.run.seed);
  model::UnifiedModel model(config);
  const int64_t trained = model::apply_training(model, recipe.training);
  auto optimizer_ptr = make_optimizer(*model, recipe.optim);
  torch::optim::AdamW& optimizer = *optimizer_ptr;
  const auto& o = recipe.optim;
  int start_step = 0;
  if (resume) {
    if (auto point = resume_latest(run, *model, optimizer)) {
      start_step = point->step;
      log::info("pretrain: resuming from " + point->checkpoint + " at step " +
                std::to_string(start_step));
    } else {
      log::warn("pretrain: --resume given but " + run.path() + " has no checkpoint; starting anew");
    }
  }
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  log::info("pretrain: " + std::to_string(parameters) + " parameters (" + std::to_string(trained) +
            " trained), " + std::to_string(rows) +
            " training rows, " + std::to_string(recipe.train.steps) + " steps");

  model->train();
  const auto& t = recipe.train;
  util::Progress progress("pretrain", recipe.train.steps - start_step, "steps");
  const auto began = std::chrono::steady_clock::now();
  int64_t tokens_seen = 0;
  for (int step = start_step; step < t.steps; ++step) {
    const double lr = learning_rate_at(o, step, t.steps);
    set_learning_rate(optimizer, lr);
    optimizer.zero_grad();
    double text_loss = 0.0;
    double image_loss = 0.0;
    for (int micro = 0; micro < o.gradient_accumulation_steps; ++micro) {
      // Each micro-batch's rows follow from (seed, step, micro) alone: a resumed run draws the
      // same batches as an uninterrupted one.
      std::mt19937_64 rng(data::split_seed(
          recipe.run.seed, "pretrain/" + std::to_string(step) + "/" + std::to_string(micro)));
      auto draw = [&] { return static_cast<int64_t>(rng() % static_cast<uint64_t>(rows)); };
      std::vector<model::Sequence> t2i;
      for (int i = 0; i < t.t2i_batch; ++i) {
        const int64_t r = draw();
        const bool unconditional =
            std::uniform_real_distribution<double>(0.0, 1.0)(rng) < t.uncond_prob;
        t2i.push_back(builder.text_to_image(set.records[r].prompt, set.codes[r], unconditional));
      }
      std::vector<model::Sequence> mm2t;
      for (int i = 0; i < t.caption_batch; ++i) {
        const int64_t r = draw();
        mm2t.push_back(builder.image_to_text(model::bytes_to_unit(set.images[r]),
                                             model::kCaptionQuestion, set.captions[r]));
      }
      for (int i = 0; i < t.qa_batch; ++i) {
        const int64_t r = draw();
        mm2t.push_back(builder.image_to_text(model::bytes_to_unit(set.images[r]),
                                             set.records[r].qa_problem,
                                             set.records[r].qa_solution));
      }
      torch::Tensor loss = torch::zeros({});
      if (!t2i.empty()) {
        const auto batch = builder.collate(t2i, model::Padding::kRight);
        const auto losses = model::supervised_losses(model, batch);
        loss = loss + t.image_loss_weight * losses.image;
        image_loss += losses.image.item<double>() / o.gradient_accumulation_steps;
        tokens_seen += batch.attention_mask.sum().item<int64_t>();
      }
      if (!mm2t.empty()) {
        const auto batch = builder.collate(mm2t, model::Padding::kRight);
        const auto losses = model::supervised_losses(model, batch);
        loss = loss + losses.text;
        text_loss += losses.text.item<double>() / o.gradient_accumulation_steps;
        tokens_seen += batch.attention_mask.sum().item<int64_t>();
      }
      (loss / o.gradient_accumulation_steps).backward();
    }
    double grad_norm = 0.0;
    if (o.max_grad_norm > 0) {
      grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), o.max_grad_norm);
    }
    optimizer.step();
    progress.advance();

    const int done = step + 1;
    if (done % t.log_every == 0 || done == t.steps) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      run.metric({{"step", done},
                  {"loss_text", text_loss},
                  {"loss_image", image_loss},
                  {"lr", lr},
                  {"grad_norm", grad_norm},
                  {"tokens_per_s", tokens_seen / std::max(seconds, 1e-9)}});
    }
    if (t.checkpoint_every > 0 && done % t.checkpoint_every == 0 && done < t.steps) {
      save_checkpoint(step_checkpoint(run.path(), done), model, sources, {{"step", done}},
                      &optimizer);
    }
  }
  progress.finish();

  const auto eval_rows = data::read_dataset(recipe.data.eval, [&] {
    data::ReadOptions read;
    read.resolution = vq->config.image_size;
    read.skip_bad_rows = recipe.data.skip_bad_rows;
    return read;
  }());
  log::info("pretrain: judging " + std::to_string(recipe.eval.prompts) + " held-out prompts and " +
            std::to_string(recipe.eval.questions) + " questions");
  const TaskScores scores = evaluate_tasks(model, builder, vq, eval_rows.records, recipe.eval,
                                           static_cast<std::uint64_t>(recipe.run.seed));
  nlohmann::json figures = {{"step", t.steps},
                            {"geneval", scores.geneval},
                            {"geneval_categories", scores.categories},
                            {"prompts", scores.prompts},
                            {"answer_accuracy", scores.answer_accuracy},
                            {"format_rate", scores.format_rate},
                            {"questions", scores.questions}};
  run.metric(figures);
  save_checkpoint((fs::path(run.path()) / "final").string(), model, sources, figures);
  char line[256];
  std::snprintf(line, sizeof line,
                "pretrain: held-out geneval %.3f (n = %d), answer accuracy %.3f, well-formed "
                "%.3f (n = %d); wrote %s",
                scores.geneval, scores.prompts, scores.answer_accuracy, scores.format_rate,
                scores.questions, (fs::path(run.path()) / "final").c_str());
  log::info(line);
}

}  // namespace corl::train
