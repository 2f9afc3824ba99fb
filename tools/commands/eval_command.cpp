// corl eval: the GenEval-style and understanding suites on one or more checkpoints, a question
// suite of one's own, or corl's judge on folders of images in GenEval's layout; with a report.
#include <ATen/Parallel.h>  // defines: at::init_num_threads

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "commands/commands.h"
#include "corl/eval/geneval_folder.h"
#include "corl/eval/question_suite.h"
#include "corl/eval/report.h"
#include "corl/eval/suites.h"
#include "corl/train/checkpoint.h"
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {
namespace {

// A worker's model: the last checkpoint it loaded, kept while its next job reads the same one.
struct LoadedPolicy {
  std::string path;
  std::optional<train::Policy> policy;
};

// Calls work(i, loaded) for i in [0, count) on `workers` threads, each taking the next index not
// yet taken with its own LoadedPolicy; rethrows the first error once every thread has stopped (no
// new job starts after one).
template <typename Work>
void run_side_by_side(size_t count, int workers, const Work& work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // written by the one thread that sets `failed`, read after the joins
  auto worker = [&] {
    at::init_num_threads();  // this thread's OpenMP team takes the intra-op count just set
    LoadedPolicy loaded;
    for (size_t i = next++; i < count && !failed; i = next++) {
      try {
        work(i, loaded);
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) threads.emplace_back(worker);
  for (auto& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto options = std::make_shared<RecipeOptions>();
  auto suite = std::make_shared<std::string>("all");
  auto checkpoints = std::make_shared<std::vector<std::string>>();
  auto data = std::make_shared<std::string>();
  auto folders = std::make_shared<std::vector<std::string>>();
  auto prompts_out = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "eval",
      "Benchmark suites (geneval, mcq, oe, one's own) on checkpoints: results.json and "
      "report.html");
  add_recipe_options(*command, *options);
  command
      ->add_option("--suite", *suite,
                   "geneval, mcq, oe, all, or a question suite of one's own (FILE.jsonl)")
      ->check([](const std::string& value) -> std::string {
        for (const char* name : {"geneval", "mcq", "oe", "all"}) {
          if (value == name) return "";
        }
        if (std::filesystem::path(value).extension() == ".jsonl") return "";
        return "geneval, mcq, oe, all or a .jsonl question suite, got '" + value + "'";
      });
  command->add_option("--ckpt", *checkpoints, "Checkpoint or run folder (repeat for several)");
  command->add_option("--data", *data, "Evaluate this JSON-lines dataset instead of the suites");
  command->add_option("--images", *folders,
                      "Judge this folder of images in GenEval's layout (corl generate --prompts) "
                      "instead of sampling; repeat for several");
  command->add_option(
      "--write-prompts", *prompts_out,
      "Write the geneval suite's prompts as GenEval metadata (JSON lines) and stop");
  command->callback([options, suite, checkpoints, data, folders, prompts_out] {
    eval::EvalRecipe recipe;
    config::Schema schema;
    auto overrides = options->overrides;
    if (!data->empty()) overrides.push_back("data=" + *data);
    const bool own_suite = std::filesystem::path(*suite).extension() == ".jsonl";
    if (own_suite) overrides.push_back("questions.path=" + *suite);
    config::load_recipe(options->config, overrides, recipe, schema);
    set_thread_count(recipe.run.threads);
    if (!prompts_out->empty()) {
      eval::write_geneval_prompts(eval::build_suites(recipe).geneval, *prompts_out);
      log::info("eval: wrote the geneval suite's prompts to " + *prompts_out);
      return;
    }
    if (checkpoints->empty() && folders->empty()) {
      throw UsageError("eval: give --ckpt (a checkpoint to evaluate) or --images (a folder)");
    }
    // Every checkpoint and suite file is read before the run folder is opened or any model
    // evaluated, so a mistyped path or a bad row costs nothing and leaves an earlier report
    // untouched.
    for (const auto& path : *checkpoints) train::resolve_checkpoint(path);
    std::optional<eval::QuestionSuite> questions;
    if (!recipe.questions.path.empty() && (own_suite || *suite == "all")) {
      questions = eval::read_question_suite(recipe.questions.path);
      for (const char* taken : {"geneval", "mcq", "oe"}) {
        if (questions->name == taken) questions->name = "questions_" + questions->name;
      }
    }
    util::RunDir run(util::run_path(options->out, recipe.run.name), schema.resolved_yaml());

    const bool builtin = !own_suite && !checkpoints->empty();
    const auto suites = builtin ? eval::build_suites(recipe) : eval::Suites{};
    auto wanted = [&](const char* name) { return *suite == "all" || *suite == name; };
    std::vector<eval::CheckpointResults> results;
    std::mutex logging;  // suites evaluated side by side log their figures one at a time
    auto logged = [&](const std::string& checkpoint, const std::string& name,
                      const eval::SuiteResult& result) {
      const std::lock_guard<std::mutex> lock(logging);
      const auto& f = result.figures;
      const char* key = name == "geneval" ? "overall" : "accuracy";
      char line[160];
      std::snprintf(line, sizeof line, "eval: %s %s %s %.3f ± %.3f", checkpoint.c_str(),
                    name.c_str(), key, f[key].get<double>(), f["se"][key].get<double>());
      log::info(line);
      run.metric({{"checkpoint", checkpoint}, {"suite", name}, {"figures", f}});
    };
    std::vector<std::string> names;  // every row's, in the order given
    auto unique_name = [&](const std::string& name) {
      std::string unique = name;
      for (const auto& other : names) {
        if (other == unique) unique += "_" + std::to_string(names.size());
      }
      names.push_back(unique);
      return unique;
    };
    for (const auto& folder : *folders) {
      eval::CheckpointResults r;
      r.path = folder;
      r.name = unique_name(eval::checkpoint_name(folder));
      log::info("eval: judging the images of " + folder);
      r.suites["geneval"] = eval::judge_geneval_folder(
          folder, {recipe.geneval.position_margin, recipe.geneval.exclusive},
          recipe.report.grid_prompts);
      logged(r.name, "geneval", r.suites["geneval"]);
      results.push_back(std::move(r));
    }
    std::vector<eval::CheckpointResults> evaluated(checkpoints->size());
    for (size_t i = 0; i < checkpoints->size(); ++i) {
      auto& r = evaluated[i];
      r.path = (*checkpoints)[i];
      r.name = unique_name(eval::checkpoint_name(r.path));
      r.run_dir = eval::run_of(r.path);
    }
    // One job is one suite of one checkpoint; every suite draws from its own seeded stream (the
    // answers are greedy), so a figure does not depend on which job ran beside it.
    struct Job {
      size_t checkpoint;
      std::string suite;
    };
    // GenEval first (a prompt's four images cost more than an answer), then the question suites,
    // the longest first.
    std::vector<std::string> suite_names;
    if (wanted("geneval") && !suites.geneval.empty()) suite_names.emplace_back("geneval");
    std::vector<std::pair<size_t, std::string>> asked;  // (questions, suite)
    if (wanted("mcq") && !suites.mcq.empty()) asked.emplace_back(suites.mcq.size(), "mcq");
    if (wanted("oe") && !suites.oe.empty()) asked.emplace_back(suites.oe.size(), "oe");
    if (questions) asked.emplace_back(questions->questions.size(), questions->name);
    std::stable_sort(asked.begin(), asked.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [count, name] : asked) suite_names.push_back(name);
    const int threads = recipe.run.threads;
    const int at_once = static_cast<int>(std::min<size_t>(
        evaluated.size() * suite_names.size(),
        recipe.checkpoints_at_once > 0 ? recipe.checkpoints_at_once : threads));
    // In turn: checkpoint by checkpoint, each loaded once. Side by side: suite by suite, so that
    // the last jobs to finish are short ones and no core idles while one checkpoint's whole
    // evaluation ends alone.
    std::vector<Job> jobs;
    if (at_once <= 1) {
      for (size_t i = 0; i < evaluated.size(); ++i) {
        for (const auto& name : suite_names) jobs.push_back({i, name});
      }
    } else {
      for (const auto& name : suite_names) {
        for (size_t i = 0; i < evaluated.size(); ++i) jobs.push_back({i, name});
      }
    }
    std::vector<eval::SuiteResult> done(jobs.size());
    auto run_job = [&](size_t index, LoadedPolicy& loaded) {
      const Job& job = jobs[index];
      const auto& r = evaluated[job.checkpoint];
      const util::ProgressTag tag(r.name);
      if (!loaded.policy || loaded.path != r.path) {
        loaded.policy.reset();  // one model in memory per worker
        loaded.policy.emplace(train::load_policy(r.path));
        loaded.path = r.path;
        log::info("eval: " + r.name + " (" + loaded.policy->dir + ")");
      }
      auto& policy = loaded.policy;
      auto& result = done[index];
      if (job.suite == "geneval") {
        result = eval::run_geneval(*policy, suites.geneval, recipe);
      } else if (job.suite == "mcq") {
        result = eval::run_questions(*policy, suites.mcq, recipe);
      } else if (job.suite == "oe") {
        result = eval::run_questions(*policy, suites.oe, recipe);
      } else {
        result = eval::run_question_suite(*policy, *questions, recipe);
      }
      logged(r.name, job.suite, result);
    };
    if (at_once <= 1) {
      LoadedPolicy loaded;
      for (size_t index = 0; index < jobs.size(); ++index) run_job(index, loaded);
    } else {
      const int each = std::max(1, threads / at_once);
      set_thread_count(each);
      log::info("eval: " + std::to_string(at_once) + " suites at once, " + std::to_string(each) +
                " thread(s) each, longest first");
      run_side_by_side(jobs.size(), at_once, run_job);
      set_thread_count(threads);
    }
    for (size_t index = 0; index < jobs.size(); ++index) {
      evaluated[jobs[index].checkpoint].suites[jobs[index].suite] = std::move(done[index]);
    }
    for (auto& r : evaluated) results.push_back(std::move(r));
    if (results.empty() || results.back().suites.empty()) {
      throw UsageError("eval: nothing to evaluate (no items for --suite " + *suite + ")");
    }
    eval::write_report(run.path(), results, recipe);
    log::info("eval: wrote " + run.path() + "/results.json and report.html");
  });
}

}  // namespace corl::tools
