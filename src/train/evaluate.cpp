#include "corl/train/evaluate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "corl/data/detect.h"
#include "corl/reward/reward.h"

namespace corl::train {

void sample_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                   tokenize::VQModel& vq, const std::vector<std::string>& prompts,
                   const ImageJudging& options, at::Generator& generator,
                   const std::function<void(size_t, std::vector<cv::Mat>&)>& sampled,
                   util::Progress* progress) {
  torch::NoGradGuard no_grad;
  model->eval();
  vq->eval();
  const size_t per_batch = static_cast<size_t>(std::max(1, options.prompts_per_batch));
  const int n = options.images_per_prompt;
  for (size_t start = 0; start < prompts.size(); start += per_batch) {
    const size_t end = std::min(prompts.size(), start + per_batch);
    std::vector<std::string> texts;
    for (size_t i = start; i < end; ++i) texts.insert(texts.end(), n, prompts[i]);
    const auto codes =
        model::generate_images(model, builder, texts, options.sampling, generator).codes;
    const auto images = tokenize::tensor_to_images(vq->decode(codes));
    for (size_t i = start; i < end; ++i) {
      std::vector<cv::Mat> of_prompt(
          images.begin() + static_cast<std::ptrdiff_t>((i - start) * n),
          images.begin() + static_cast<std::ptrdiff_t>((i - start + 1) * n));
      sampled(i, of_prompt);
    }
    if (progress) progress->advance(static_cast<int64_t>(end - start));
  }
}

void generate_and_judge(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                        tokenize::VQModel& vq, const std::vector<GenevalItem>& prompts,
                        const ImageJudging& options, at::Generator& generator,
                        const std::function<void(size_t, std::vector<JudgedImage>&)>& judged,
                        util::Progress* progress) {
  std::vector<std::string> texts;
  texts.reserve(prompts.size());
  for (const auto& item : prompts) texts.push_back(item.prompt);
  sample_images(
      model, builder, vq, texts, options, generator,
      [&](size_t i, std::vector<cv::Mat>& images) {
        std::vector<JudgedImage> judgements;
        for (const cv::Mat& image : images) {
          const auto judgement = data::judge(prompts[i].spec, data::detect(image), options.rules);
          judgements.push_back({image, judgement.correct, judgement.reason});
        }
        judged(i, judgements);
      },
      progress);
}

std::vector<GradedAnswer> answer_and_grade(model::UnifiedModel& model,
                                           const model::SequenceBuilder& builder,
                                           const std::vector<QuestionItem>& questions,
                                           int max_new_tokens, int batch_size,
                                           util::Progress* progress) {
  torch::NoGradGuard no_grad;
  model->eval();
  model::SamplingOptions sampling;
  sampling.greedy = true;
  sampling.max_new_tokens = max_new_tokens;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);  // greedy: never drawn from
  std::vector<GradedAnswer> graded;
  const size_t per_batch = static_cast<size_t>(std::max(1, batch_size));
  for (size_t start = 0; start < questions.size(); start += per_batch) {
    const size_t end = std::min(questions.size(), start + per_batch);
    std::vector<model::Sequence> prefixes;
    for (size_t i = start; i < end; ++i) {
      prefixes.push_back(builder.image_to_text(
          model::image_to_tensor(questions[i].image, model->config.image_size),
          questions[i].problem));
    }
    const auto answers = model::generate_text(model, builder, prefixes, sampling, generator);
    for (size_t i = start; i < end; ++i) {
      const auto& q = questions[i];
      const std::string& completion = answers.texts[i - start];
      graded.push_back({completion, reward::answer_correct(completion, q.solution, q.qa_type),
                        reward::well_formed(completion)});
    }
    if (progress) progress->advance(static_cast<int64_t>(end - start));
  }
  return graded;
}

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
  TaskScores scores;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);

  std::vector<GenevalItem> prompts;
  for (const auto& r : records) {
    if (r.spec && static_cast<int>(prompts.size()) < options.prompts) {
      prompts.push_back({r.prompt, *r.spec});
    }
  }
  ImageJudging judging;
  judging.sampling.cfg_weight = options.cfg_weight;
  judging.sampling.temperature = options.temperature;
  judging.rules = {options.position_margin, options.exclusive};
  judging.prompts_per_batch = options.batch_size;
  std::map<std::string, std::pair<int, int>> tally;  // category -> (correct, judged)
  generate_and_judge(model, builder, vq, prompts, judging, generator,
                     [&](size_t i, std::vector<JudgedImage>& images) {
                       auto& [correct, judged] = tally[data::name(prompts[i].spec.category)];
                       correct += images.front().correct;
                       ++judged;
                     });
  for (const auto& [category, counts] : tally) {
    scores.categories[category] = static_cast<double>(counts.first) / counts.second;
    scores.geneval += scores.categories[category] / tally.size();
  }
  scores.prompts = static_cast<int>(prompts.size());

  const size_t asked =
      std::min(static_cast<size_t>(std::max(0, options.questions)), records.size());
  std::vector<QuestionItem> questions;
  for (size_t i = 0; i < asked; ++i) {
    const auto& r = records[i];
    questions.push_back({r.image, r.qa_problem, r.qa_solution, r.qa_type, r.question_kind});
  }
  int correct = 0;
  int formed = 0;
  for (const auto& answer :
       answer_and_grade(model, builder, questions, options.max_new_tokens, options.batch_size)) {
    correct += answer.correct;
    formed += answer.well_formed;
  }
  scores.questions = static_cast<int>(asked);
  if (asked > 0) {
    scores.answer_accuracy = static_cast<double>(correct) / scores.questions;
    scores.format_rate = static_cast<double>(formed) / scores.questions;
  }
  return scores;
}

}  // namespace corl::train
