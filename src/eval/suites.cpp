#include "corl/eval/suites.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cmath>

#include "corl/data/render.h"
#include "corl/data/world.h"
#include "corl/model/inputs.h"
#include "corl/train/evaluate.h"
#include "corl/util/error.h"
#include "corl/util/progress.h"

namespace corl::eval {

void bind(config::Schema& s, EvalRecipe& r) {
  config::bind(s, r.run);
  s.add("world", &r.world,
        "World recipe the suites are drawn from (the resolved recipe.yaml of `corl data`)");
  s.add("data", &r.data, "A JSON-lines dataset to evaluate instead of the generated suites");
  auto& g = r.geneval;
  s.add("geneval.prompts_per_category", &g.prompts_per_category,
        "Prompts per GenEval category (six categories)")
      .range(1, 1000000);
  s.add("geneval.images_per_prompt", &g.images_per_prompt, "Images sampled per prompt (GenEval: 4)")
      .range(1, 1000);
  s.add("geneval.cfg_weight", &g.cfg_weight, "Classifier-free guidance weight").range(0.0, 100.0);
  s.add("geneval.temperature", &g.temperature, "Sampling temperature of the images")
      .range(1e-3, 100.0);
  s.add("geneval.position_margin", &g.position_margin,
        "Centres must differ by more than this for a relation to hold")
      .range(0.0, 1.0);
  s.add("geneval.exclusive", &g.exclusive,
        "An image showing objects the prompt did not ask for fails (ShapeWorld captions describe "
        "the whole scene)");
  s.add("questions.path", &r.questions.path,
        "A question suite of one's own (JSON lines: image, question, options, answer; "
        "docs/evaluation.md), evaluated beside the others; `--suite FILE` evaluates it alone");
  s.add("questions.group_by", &r.questions.group_by,
        "Fields of the question suite's rows whose values split its accuracy (a dotted path such "
        "as metadata.category reaches into nested objects; fields no row has are ignored)");
  s.add("mcq.questions", &r.mcq_questions, "Held-out multiple-choice questions").range(0, 1000000);
  s.add("oe.questions", &r.oe_questions, "Held-out open-ended questions").range(0, 1000000);
  s.add("decode.max_new_tokens", &r.max_new_tokens, "Longest answer").range(1, 100000);
  s.add("decode.batch_size", &r.batch_size, "Rows sampled at once").range(1, 100000);
  s.add("checkpoints_at_once", &r.checkpoints_at_once,
        "Evaluations run side by side (each one suite of one checkpoint, every checkpoint's "
        "GenEval first), each on run.threads / checkpoints_at_once threads (0: one thread each, "
        "as many at once as run.threads)")
      .range(0, 256);
  s.add("report.grid_prompts", &r.report.grid_prompts,
        "Prompts per category shown with their judged images")
      .range(0, 1000);
  s.add("report.sample_answers", &r.report.sample_answers, "Answers shown per question suite")
      .range(0, 1000);
  s.add("report.python", &r.report.python, "Python that runs the plotting script");
  s.add("report.plotter", &r.report.plotter,
        "Script that plots a run's training curves (matplotlib); none: no curves");
}

void validate(const EvalRecipe&) {}

double binomial_se(double p, int n) { return n > 0 ? std::sqrt(p * (1.0 - p) / n) : 0.0; }

nlohmann::json accuracy_entry(int correct, int asked) {
  const double p = asked > 0 ? static_cast<double>(correct) / asked : 0.0;
  return {{"accuracy", p}, {"se", binomial_se(p, asked)}, {"n", asked}};
}

nlohmann::json answer_figures(int correct, int formed, int questions) {
  const int n = questions;
  const double accuracy = n > 0 ? static_cast<double>(correct) / n : 0.0;
  const double format_rate = n > 0 ? static_cast<double>(formed) / n : 0.0;
  return {{"accuracy", accuracy},
          {"se",
           {{"accuracy", binomial_se(accuracy, n)}, {"format_rate", binomial_se(format_rate, n)}}},
          {"format_rate", format_rate},
          {"questions", n}};
}

nlohmann::json geneval_figures(const std::map<std::string, std::vector<double>>& by_category,
                               size_t images) {
  nlohmann::json figures;
  nlohmann::json errors;
  double overall = 0.0;
  double variance = 0.0;
  size_t prompts = 0;
  for (const auto& [category, accuracies] : by_category) {
    const double n = static_cast<double>(accuracies.size());
    double mean = 0.0;
    for (double a : accuracies) mean += a / n;
    double spread = 0.0;
    for (double a : accuracies) spread += (a - mean) * (a - mean);
    const double se = n > 1 ? std::sqrt(spread / (n - 1) / n) : 0.0;
    figures[category] = mean;
    errors[category] = se;
    overall += mean / static_cast<double>(by_category.size());
    variance += se * se;
    prompts += accuracies.size();
  }
  const double categories = static_cast<double>(std::max<size_t>(1, by_category.size()));
  figures["overall"] = overall;
  errors["overall"] = std::sqrt(variance) / categories;
  figures["se"] = errors;
  figures["prompts"] = prompts;
  figures["images"] = images;
  return figures;
}

namespace {

QuestionItem question_of(const data::Sample& sample, int resolution) {
  QuestionItem q;
  q.image = data::render(sample.scene, resolution);
  q.problem = sample.question.problem;
  q.solution = sample.question.solution;
  q.qa_type = sample.question.multiple_choice ? "MC" : "OE";
  q.kind = data::name(sample.question.kind);
  return q;
}

}  // namespace

Suites build_suites(const EvalRecipe& recipe) {
  Suites suites;
  if (!recipe.data.empty()) {
    data::ReadOptions read;
    read.resolution = 0;  // the model resizes
    const auto dataset = data::read_dataset(recipe.data, read);
    for (const auto& r : dataset.records) {
      if (r.spec) suites.geneval.push_back({r.prompt, *r.spec});
      if (r.qa_problem.empty()) continue;
      QuestionItem q{r.image, r.qa_problem, r.qa_solution, r.qa_type, r.question_kind};
      (r.qa_type == "MC" ? suites.mcq : suites.oe).push_back(std::move(q));
    }
    return suites;
  }
  config::WorldRecipe world_recipe;
  config::Schema schema;
  config::load_recipe(recipe.world, {}, world_recipe, schema);
  const auto spec = data::WorldSpec::from_recipe(world_recipe);
  // Seeds of the eval's own, never those of `corl data`'s train or eval splits; the prompts are
  // those world.held_out_prompts keeps from them (all of them when it is 0). The question suites
  // ask about fresh scenes of every prompt.
  auto prompt_spec = spec;
  prompt_spec.prompt_side = data::PromptSide::kHeldOut;
  data::WorldSampler prompts(prompt_spec, data::split_seed(recipe.run.seed, "eval-suite/geneval"));
  for (const auto category : spec.categories) {
    for (int i = 0; i < recipe.geneval.prompts_per_category; ++i) {
      const auto sample = prompts.sample(category);
      suites.geneval.push_back({sample.prompt, sample.spec});
    }
  }
  auto questions = [&](double mc_fraction, int n, const char* name) {
    auto question_spec = spec;
    question_spec.mc_fraction = mc_fraction;
    // The benchmarks weigh every category and question kind alike, whatever mix the RL rows
    // were given.
    question_spec.category_weights.clear();
    question_spec.question_weights.clear();
    data::WorldSampler sampler(
        question_spec, data::split_seed(recipe.run.seed, std::string("eval-suite/") + name));
    std::vector<QuestionItem> items;
    for (int i = 0; i < n; ++i) items.push_back(question_of(sampler.next(), spec.resolution));
    return items;
  };
  suites.mcq = questions(1.0, recipe.mcq_questions, "mcq");
  suites.oe = questions(0.0, recipe.oe_questions, "oe");
  return suites;
}

SuiteResult run_geneval(train::Policy& policy, const std::vector<GenevalItem>& items,
                        const EvalRecipe& recipe) {
  const model::SequenceBuilder builder(*policy.text, policy.model->config);
  const auto& g = recipe.geneval;
  train::ImageJudging judging;
  judging.sampling.cfg_weight = g.cfg_weight;
  judging.sampling.temperature = g.temperature;
  judging.rules = {g.position_margin, g.exclusive};
  judging.images_per_prompt = g.images_per_prompt;
  judging.prompts_per_batch = std::max(1, recipe.batch_size / g.images_per_prompt);
  auto generator =
      at::make_generator<at::CPUGeneratorImpl>(data::split_seed(recipe.run.seed, "eval/images"));

  // category -> per-prompt accuracies
  std::map<std::string, std::vector<double>> by_category;
  std::map<std::string, int> shown;
  SuiteResult result;
  util::Progress progress("eval geneval", static_cast<int64_t>(items.size()), "prompts");
  train::generate_and_judge(
      policy.model, builder, policy.vq, items, judging, generator,
      [&](size_t i, std::vector<JudgedImage>& images) {
        const std::string category = data::name(items[i].spec.category);
        int correct = 0;
        for (const auto& image : images) correct += image.correct;
        by_category[category].push_back(static_cast<double>(correct) / g.images_per_prompt);
        if (shown[category]++ < recipe.report.grid_prompts) {
          result.grids.push_back({category, items[i].prompt, std::move(images)});
        }
      },
      &progress);
  progress.finish();

  result.figures = geneval_figures(by_category, items.size() * g.images_per_prompt);
  result.items = by_category;
  return result;
}

SuiteResult run_questions(train::Policy& policy, const std::vector<QuestionItem>& items,
                          const EvalRecipe& recipe) {
  const model::SequenceBuilder builder(*policy.text, policy.model->config);
  util::Progress progress("eval questions", static_cast<int64_t>(items.size()), "questions");
  const auto graded = train::answer_and_grade(policy.model, builder, items, recipe.max_new_tokens,
                                              recipe.batch_size, &progress);
  progress.finish();

  std::map<std::string, std::pair<int, int>> by_kind;  // kind -> (correct, asked)
  int correct = 0;
  int formed = 0;
  SuiteResult result;
  result.items = nlohmann::json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    const auto& answer = graded[i];
    correct += answer.correct;
    formed += answer.well_formed;
    result.items.push_back(answer.correct ? 1 : 0);
    result.records.push_back({{"question", item.problem},
                              {"gold", item.solution},
                              {"kind", item.kind},
                              {"completion", answer.completion},
                              {"right", answer.correct}});
    auto& [kind_correct, kind_asked] = by_kind[item.kind.empty() ? "other" : item.kind];
    kind_correct += answer.correct;
    ++kind_asked;
    if (static_cast<int>(result.answers.size()) < recipe.report.sample_answers) {
      result.answers.push_back(
          {item.image, item.problem, item.solution, answer.completion, answer.correct});
    }
  }
  nlohmann::json types;
  for (const auto& [kind, counts] : by_kind) {
    types[kind] = accuracy_entry(counts.first, counts.second);
  }
  result.figures = answer_figures(correct, formed, static_cast<int>(items.size()));
  result.figures["by_type"] = types;
  return result;
}

}  // namespace corl::eval
