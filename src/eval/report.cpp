#include "corl/eval/report.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "corl/data/render.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/log.h"
#include "corl/util/strings.h"

namespace corl::eval {
namespace fs = std::filesystem;

std::string checkpoint_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename() == "final") return p.parent_path().filename().string();
  if (p.parent_path().filename() == "checkpoints") {
    return p.parent_path().parent_path().filename().string() + "@" + p.filename().string();
  }
  return p.filename().string();
}

std::string run_of(const std::string& checkpoint) {
  fs::path p = fs::path(checkpoint).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  for (const fs::path& candidate : {p, p.parent_path(), p.parent_path().parent_path()}) {
    if (!candidate.empty() && fs::exists(candidate / "metrics.jsonl")) return candidate.string();
  }
  return "";
}

namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fixed(double value, int digits = 3) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// A 64-pixel image is unreadable at its own size: write it 2x, nearest neighbour.
std::string save_image(const cv::Mat& rgb, const std::string& out, const std::string& relative) {
  cv::Mat big;
  cv::resize(rgb, big, cv::Size(rgb.cols * 2, rgb.rows * 2), 0, 0, cv::INTER_NEAREST);
  fs::create_directories((fs::path(out) / relative).parent_path());
  data::write_png(big, (fs::path(out) / relative).string());
  return relative;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A JSON pointer's token for a field or value of a user's rows (RFC 6901: ~ and / escaped).
std::string token(const std::string& text) {
  std::string out;
  for (char c : text)
    out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

// (column title, suite, key in the suite's figures)
struct Column {
  std::string title, suite, key;
};

std::string table(const std::vector<CheckpointResults>& results,
                  const std::vector<Column>& columns) {
  std::ostringstream html;
  html << "<table><tr><th>checkpoint</th>";
  for (const auto& c : columns) html << "<th>" << escape(c.title) << "</th>";
  html << "</tr>\n";
  // Best (highest) per column, in bold.
  std::vector<double> best(columns.size(), -1.0);
  auto value = [](const CheckpointResults& r, const Column& c, double& v, double& se) {
    const auto suite = r.suites.find(c.suite);
    if (suite == r.suites.end()) return false;
    const auto& f = suite->second.figures;
    if (f.contains(c.key) && f[c.key].is_number()) {
      v = f[c.key].get<double>();
      se = f.contains("se") && f["se"].contains(c.key) ? f["se"][c.key].get<double>() : 0.0;
      return true;
    }
    // "by_type/MC", "groups/subject/math": an {accuracy, se, n} entry.
    const nlohmann::json::json_pointer entry(
        "/" + (c.key.find('/') == std::string::npos ? "by_type/" + c.key : c.key));
    if (f.contains(entry) && f[entry].is_object() && f[entry].contains("accuracy")) {
      v = f[entry]["accuracy"].get<double>();
      se = f[entry]["se"].get<double>();
      return true;
    }
    return false;
  };
  for (const auto& r : results) {
    for (size_t k = 0; k < columns.size(); ++k) {
      double v, se;
      if (value(r, columns[k], v, se)) best[k] = std::max(best[k], v);
    }
  }
  for (const auto& r : results) {
    html << "<tr><td>" << escape(r.name) << "</td>";
    for (size_t k = 0; k < columns.size(); ++k) {
      double v, se;
      if (!value(r, columns[k], v, se)) {
        html << "<td>–</td>";
        continue;
      }
      const std::string text = fixed(v) + " <small>± " + fixed(se) + "</small>";
      html << "<td>" << (v == best[k] ? "<b>" + text + "</b>" : text) << "</td>";
    }
    html << "</tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

}  // namespace

void write_report(const std::string& out, const std::vector<CheckpointResults>& results,
                  const EvalRecipe& recipe) {
  fs::create_directories(out);
  nlohmann::json figures;
  for (const auto& r : results) {
    for (const auto& [suite, result] : r.suites) {
      figures[r.name][suite] = result.figures;
      figures[r.name][suite]["items"] = result.items;
    }
    figures[r.name]["checkpoint"] = r.path;
  }
  util::write_file_atomic(out + "/results.json", figures.dump(2) + "\n");
  for (const auto& r : results) {
    for (const auto& [suite, result] : r.suites) {
      if (result.records.empty()) continue;
      std::string lines;
      for (const auto& record : result.records) lines += record.dump() + "\n";
      fs::create_directories(out + "/answers/" + r.name);
      util::write_file_atomic(out + "/answers/" + r.name + "/" + suite + ".jsonl", lines);
    }
  }

  std::ostringstream html;
  html << "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>corl eval</title>\n"
       << "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
          "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
          "img{image-rendering:pixelated}figure{display:inline-block;margin:4px;"
          "text-align:center;font-size:11px;width:140px;vertical-align:top}"
          ".ok{color:#080}.bad{color:#b00}small{color:#666}"
          ".prompt{margin-top:1em;font-weight:bold}</style></head><body>\n"
       << "<h1>corl eval</h1>\n<p>Held-out suites ";
  if (recipe.data.empty()) {
    html << "drawn from the world of <code>" << escape(recipe.world) << "</code> with seed "
         << recipe.run.seed << " (disjoint from the training split's)";
  } else {
    html << "from <code>" << escape(recipe.data) << "</code>";
  }
  html << ". GenEval: " << recipe.geneval.images_per_prompt
       << " images per prompt, judged by the detector"
       << (recipe.geneval.exclusive ? " (an image must show nothing but the requested objects)"
                                    : "")
       << "; overall = mean over categories. MCQ and OE: greedy answers. ± is one standard "
          "error.</p>\n";
  if (!recipe.questions.path.empty()) {
    html << "<p>Question suite of one's own: <code>" << escape(recipe.questions.path)
         << "</code>, greedy answers graded as the accuracy reward grades them; split by "
         << escape(util::join(recipe.questions.group_by, ", ")) << " where rows have them.</p>\n";
  }

  html << "<h2>Results</h2>\n";
  // ShapeWorld's tables only where some checkpoint ran ShapeWorld's suites.
  auto ran = [&](const char* suite) {
    return std::any_of(results.begin(), results.end(),
                       [&](const CheckpointResults& r) { return r.suites.count(suite) > 0; });
  };
  const bool shapeworld_questions = ran("mcq") || ran("oe");
  if (ran("geneval") || shapeworld_questions) {
    html << table(results, {{"GenEval overall", "geneval", "overall"},
                            {"MCQ accuracy", "mcq", "accuracy"},
                            {"OE accuracy", "oe", "accuracy"}});
  }
  if (ran("geneval")) {
    std::vector<Column> categories;
    for (const char* c :
         {"single_object", "two_object", "counting", "colors", "position", "color_attr"}) {
      categories.push_back({c, "geneval", c});
    }
    html << "<h3>GenEval by category</h3>\n" << table(results, categories);
  }
  if (shapeworld_questions) {
    std::vector<Column> kinds;
    for (const char* suite : {"mcq", "oe"}) {
      for (const char* k : {"count", "color", "shape", "position", "existence"}) {
        kinds.push_back({std::string(suite) + " " + k, suite, k});
      }
    }
    html << "<h3>Questions by type</h3>\n" << table(results, kinds);
  }
  // Question suites of one's own: accuracy by type and by each grouping field.
  std::set<std::string> own;
  for (const auto& r : results) {
    for (const auto& [suite, result] : r.suites) {
      if (suite != "geneval" && suite != "mcq" && suite != "oe") own.insert(suite);
    }
  }
  for (const auto& suite : own) {
    std::vector<Column> columns = {{"accuracy", suite, "accuracy"},
                                   {"format rate", suite, "format_rate"}};
    std::set<std::string> types;
    std::map<std::string, std::set<std::string>> groups;
    for (const auto& r : results) {
      const auto found = r.suites.find(suite);
      if (found == r.suites.end()) continue;
      const auto& f = found->second.figures;
      for (const auto& [type, entry] : f["by_type"].items()) types.insert(type);
      for (const auto& [field, values] : f["groups"].items()) {
        for (const auto& [value, entry] : values.items()) groups[field].insert(value);
      }
    }
    for (const auto& type : types) columns.push_back({type, suite, "by_type/" + token(type)});
    html << "<h3>" << escape(suite) << "</h3>\n" << table(results, columns);
    for (const auto& [field, values] : groups) {
      std::vector<Column> by_value;
      for (const auto& value : values) {
        by_value.push_back({value, suite, "groups/" + token(field) + "/" + token(value)});
      }
      html << "<h4>" << escape(suite) << " by " << escape(field) << "</h4>\n"
           << table(results, by_value);
    }
  }
  if (shapeworld_questions) {
    html << "<h3>Well-formed answers</h3>\n"
         << table(results, {{"MCQ format rate", "mcq", "format_rate"},
                            {"OE format rate", "oe", "format_rate"}});
  }

  // Training curves.
  html << "<h2>Training curves</h2>\n";
  if (recipe.report.plotter == "none") {
    html << "<p>Not plotted (report.plotter: none).</p>\n";
  }
  for (const auto& r : results) {
    if (recipe.report.plotter == "none") break;
    if (r.run_dir.empty()) {
      html << "<p>" << escape(r.name) << ": no run folder with metrics.jsonl found.</p>\n";
      continue;
    }
    const std::string plot = "plots/" + r.name + ".png";
    fs::create_directories(fs::path(out) / "plots");
    const std::string command = quoted(recipe.report.python) + " " + quoted(recipe.report.plotter) +
                                " --title " + quoted(r.name) + " --out " +
                                quoted(out + "/" + plot) + " " +
                                quoted(r.run_dir + "/metrics.jsonl") + " > /dev/null 2>&1";
    if (std::system(command.c_str()) == 0 && fs::exists(fs::path(out) / plot)) {
      html << "<h3>" << escape(r.name) << "</h3><img src=\"" << plot << "\" alt=\"curves of "
           << escape(r.name) << "\" style=\"max-width:100%\">\n";
    } else {
      log::warn("eval: could not plot " + r.run_dir + "/metrics.jsonl with " +
                recipe.report.plotter);
      html << "<p>" << escape(r.name) << ": plotting failed (" << escape(command) << ").</p>\n";
    }
  }

  // Judged images.
  html << "<h2>Generated images</h2>\n";
  for (const auto& r : results) {
    const auto suite = r.suites.find("geneval");
    if (suite == r.suites.end()) continue;
    html << "<h3>" << escape(r.name) << "</h3>\n";
    int index = 0;
    std::string category;
    for (const auto& grid : suite->second.grids) {
      if (grid.category != category) {
        category = grid.category;
        html << "<h4>" << escape(category) << "</h4>\n";
      }
      html << "<div class=\"prompt\">" << escape(grid.prompt) << "</div>\n";
      for (const auto& image : grid.images) {
        const std::string file = save_image(
            image.image, out, "images/" + r.name + "/" + std::to_string(index++) + ".png");
        html << "<figure><img src=\"" << file << "\" width=\"128\" height=\"128\" alt=\"\">"
             << "<figcaption class=\"" << (image.correct ? "ok\">✓ correct" : "bad\">✗ ")
             << (image.correct ? "" : escape(image.reason)) << "</figcaption></figure>\n";
      }
    }
  }

  // Sample answers.
  html << "<h2>Sample answers</h2>\n";
  for (const auto& r : results) {
    for (const auto& [name, result] : r.suites) {
      if (result.answers.empty()) continue;
      html << "<h3>" << escape(r.name) << " — " << name << "</h3>\n<table>"
           << "<tr><th>image</th><th>question</th><th>gold</th><th>answer</th></tr>\n";
      int index = 0;
      for (const auto& a : result.answers) {
        const std::string file = save_image(
            a.image, out, "images/" + r.name + "/" + name + "_" + std::to_string(index++) + ".png");
        html << "<tr><td><img src=\"" << file << "\" width=\"96\" height=\"96\" alt=\"\"></td>"
             << "<td style=\"text-align:left\">" << escape(a.question) << "</td>"
             << "<td style=\"text-align:left\">" << escape(a.gold) << "</td>"
             << "<td style=\"text-align:left\" class=\"" << (a.correct ? "ok" : "bad") << "\">"
             << escape(a.completion) << "</td></tr>\n";
      }
      html << "</table>\n";
    }
  }
  html << "</body></html>\n";
  util::write_file_atomic(out + "/report.html", html.str());
}

}  // namespace corl::eval
