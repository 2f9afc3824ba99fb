#include "corl/train/evaluate.h"

#include "corl/data/answers.h"
#include "corl/data/detect.h"
#include "corl/data/geneval.h"
#include "corl/model/sampling.h"
#include "corl/reward/reward.h"

namespace corl::train {

void bind(config::Schema& s, EvalSection& e) {
  s.add("eval.prompts", &e.prompts, "Held-out prompts whose images are judged at the end")
      .range(0, 1000000);
  s.add("eval.questions", &e.questions, "Held-out questions answered at the end").range(0, 1000000);
  s.add("eval.cfg_weight", &e.cfg_weight, "Classifier-free guidance weight of the judged images")
      .range(0.0, 100.0);
  s.add("eval.temperature", &e.temperature, "Sampling temperature of the judged images")
      .range(0.0, 100.0);
  s.add("eval.max_new_tokens", &e.max_new_tokens, "Longest answer").range(1, 100000);
  s.add("eval.batch_size", &e.batch_size, "Prompts or questions sampled at once").range(1, 100000);
  s.add("eval.position_margin", &e.position_margin,
        "Centres must differ by more than this (image-relative) for a relation to hold")
      .range(0.0, 1.0);
  s.add("eval.exclusive", &e.exclusive,
        "The judge also fails an image that shows objects the prompt did not ask for "
        "(ShapeWorld captions describe the whole scene; GenEval itself does not check this)");
}

TaskScores evaluate_tasks(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<data::Record>& records,
                          const EvalSection& options, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  model->eval();
  vq->eval();
  TaskScores scores;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);

  // Generation: one image per prompt, judged by the detector against the prompt's spec.
  std::vector<const data::Record*> prompts;
  for (const auto& r : records) {
    if (r.spec && static_cast<int>(prompts.size()) < options.prompts) prompts.push_back(&r);
  }
  std::map<std::string, std::pair<int, int>> tally;  // category -> (correct, judged)
  model::ImageSamplingOptions image_options;
  image_options.cfg_weight = options.cfg_weight;
  image_options.temperature = options.temperature;
  for (size_t start = 0; start < prompts.size(); start += options.batch_size) {
    const size_t end = std::min(prompts.size(), start + options.batch_size);
    std::vector<std::string> texts;
    for (size_t i = start; i < end; ++i) texts.push_back(prompts[i]->prompt);
    const auto samples = model::generate_images(model, builder, texts, image_options, generator);
    const auto images = tokenize::tensor_to_images(vq->decode(samples.codes));
    for (size_t i = start; i < end; ++i) {
      const auto judgement = data::judge(*prompts[i]->spec, data::detect(images[i - start]),
                                         {options.position_margin, options.exclusive});
      auto& [correct, judged] = tally[data::name(prompts[i]->spec->category)];
      correct += judgement.correct;
      ++judged;
    }
  }
  for (const auto& [category, counts] : tally) {
    scores.categories[category] = static_cast<double>(counts.first) / counts.second;
    scores.geneval += scores.categories[category] / tally.size();
  }
  scores.prompts = static_cast<int>(prompts.size());

  // Understanding: greedy answers, as the paper evaluates.
  const int questions = std::min<int>(options.questions, static_cast<int>(records.size()));
  model::SamplingOptions text_options;
  text_options.greedy = true;
  text_options.max_new_tokens = options.max_new_tokens;
  int correct = 0;
  int formed = 0;
  for (int start = 0; start < questions; start += options.batch_size) {
    const int end = std::min(questions, start + options.batch_size);
    std::vector<model::Sequence> prefixes;
    for (int i = start; i < end; ++i) {
      prefixes.push_back(
          builder.image_to_text(model::image_to_tensor(records[i].image, model->config.image_size),
                                records[i].qa_problem));
    }
    const auto answers = model::generate_text(model, builder, prefixes, text_options, generator);
    for (int i = start; i < end; ++i) {
      const std::string& completion = answers.texts[i - start];
      formed += reward::well_formed(completion);
      correct += reward::answer_correct(completion, records[i].qa_solution, records[i].qa_type);
    }
  }
  scores.questions = questions;
  if (questions > 0) {
    scores.answer_accuracy = static_cast<double>(correct) / questions;
    scores.format_rate = static_cast<double>(formed) / questions;
  }
  return scores;
}

}  // namespace corl::train
