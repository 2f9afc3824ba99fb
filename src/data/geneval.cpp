#include "corl/data/geneval.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <vector>

#include "corl/util/error.h"

namespace corl::data {

namespace {

bool matches(const Requirement& requirement, const Object& object) {
  return object.shape == requirement.shape &&
         (!requirement.color || object.color == *requirement.color);
}

// Indices of the detected objects a requirement speaks of.
std::vector<std::size_t> matching(const Requirement& requirement, const Scene& scene) {
  std::vector<std::size_t> found;
  for (std::size_t i = 0; i < scene.objects.size(); ++i) {
    if (matches(requirement, scene.objects[i])) found.push_back(i);
  }
  return found;
}

// Detected objects of a coloured requirement's shape in another colour.
int shape_only(const Requirement& requirement, const Scene& scene) {
  if (!requirement.color) return 0;
  return static_cast<int>(
      std::count_if(scene.objects.begin(), scene.objects.end(), [&](const Object& o) {
        return o.shape == requirement.shape && o.color != *requirement.color;
      }));
}

// "red circle" / "3 red circles": the words a reason uses for a requirement's objects.
std::string describe(const Requirement& requirement, int count) {
  std::string text = requirement.color ? name(*requirement.color) + " " : "";
  return text + (count == 1 ? name(requirement.shape) : plural(requirement.shape));
}

// "a red circle", "an orange square".
std::string with_article(const std::string& words) {
  const bool vowel = !words.empty() && std::string("aeiou").find(words[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + words;
}

}  // namespace

bool holds(Relation relation, const Object& a, const Object& b, double position_margin) {
  switch (relation) {
    case Relation::kLeftOf:
      return b.x - a.x > position_margin;
    case Relation::kRightOf:
      return a.x - b.x > position_margin;
    // y grows downwards: "above" is a smaller y.
    case Relation::kAbove:
      return b.y - a.y > position_margin;
    case Relation::kBelow:
      return a.y - b.y > position_margin;
  }
  return false;
}

// One check per requirement and one for the relation; `partial` is their mean score.
// A count check scores 1 when it holds. When it fails it earns credit for how close the count
// came, so a reward built on `partial` still points the right way:
//   at least N, found F < N:  (F + H / 2) / N, H = min(N - F, objects of the requirement's
//                             shape in another colour): a wrong colour is half right
//   exactly N,  found F:      max(0, 1 - |F - N| / N)
// The relation check scores 1 or 0. With the exclusive rule, `partial` is then multiplied by
// the precision of the detected objects: the share of them that a requirement claims (exact
// matches first, then same-shape objects that earned half credit).
Judgement judge(const PromptSpec& spec, const Scene& detected, const JudgeRules& rules) {
  Judgement judgement;
  judgement.correct = true;
  double score = 0.0;
  int checks = 0;
  auto fail = [&judgement](std::string reason) {
    if (judgement.correct) judgement.reason = std::move(reason);
    judgement.correct = false;
  };

  std::vector<std::vector<std::size_t>> found;
  for (const Requirement& requirement : spec.include) {
    found.push_back(matching(requirement, detected));
    const int count = static_cast<int>(found.back().size());
    const int wanted = std::max(1, requirement.count);
    ++checks;
    const bool ok = spec.exact_count ? count == wanted : count >= wanted;
    if (ok) {
      score += 1.0;
      continue;
    }
    if (spec.exact_count) {
      score += std::max(0.0, 1.0 - std::abs(count - wanted) / static_cast<double>(wanted));
    } else {
      // A missing coloured object drawn in another colour is half right.
      const int near = std::min(wanted - count, shape_only(requirement, detected));
      score += (count + 0.5 * near) / static_cast<double>(wanted);
    }
    fail("expected " + std::string(spec.exact_count ? "exactly " : "") + std::to_string(wanted) +
         " " + describe(requirement, wanted) + ", found " + std::to_string(count));
  }

  if (spec.relation && spec.include.size() >= 2) {
    ++checks;
    bool any = false;
    // Any subject-reference pair will do, as long as they are two different objects (a prompt
    // may relate two objects of the same kind).
    for (std::size_t a : found[0]) {
      for (std::size_t b : found[1]) {
        if (a != b && holds(*spec.relation, detected.objects[a], detected.objects[b],
                            rules.position_margin)) {
          any = true;
        }
      }
    }
    if (any) {
      score += 1.0;
    } else {
      fail("no " + describe(spec.include[0], 1) + " " + name(*spec.relation) + " " +
           with_article(describe(spec.include[1], 1)));
    }
  }

  judgement.partial = checks > 0 ? score / checks : 1.0;
  if (rules.exclusive) {
    std::set<std::size_t> claimed;
    for (std::size_t r = 0; r < spec.include.size(); ++r) {
      const int wanted = std::max(1, spec.include[r].count);
      // Requirements of one kind ("a circle above a circle") claim different objects.
      int taken = 0;
      for (std::size_t k = 0; k < found[r].size() && taken < wanted; ++k) {
        taken += claimed.insert(found[r][k]).second ? 1 : 0;
      }
      // An object that earned half credit (right shape, other colour) is not clutter either.
      const Requirement& requirement = spec.include[r];
      for (std::size_t k = 0; k < detected.objects.size() && taken < wanted; ++k) {
        if (requirement.color && detected.objects[k].shape == requirement.shape &&
            !spec.exact_count) {
          taken += claimed.insert(k).second ? 1 : 0;
        }
      }
    }
    const auto shown = detected.objects.size();
    const int extra = static_cast<int>(shown - claimed.size());
    if (extra > 0) {
      // A factor, not one more check: an empty image must not earn credit for having nothing
      // extra, or a policy learns to draw nothing.
      judgement.partial *= static_cast<double>(claimed.size()) / static_cast<double>(shown);
      fail(std::to_string(extra) + (extra == 1 ? " object" : " objects") +
           " the prompt did not ask for");
    }
  }
  return judgement;
}

nlohmann::ordered_json to_geneval_metadata(const PromptSpec& spec, const std::string& prompt) {
  auto requirement = [](const Requirement& r) {
    nlohmann::ordered_json out = {{"class", name(r.shape)}, {"count", r.count}};
    if (r.color) out["color"] = name(*r.color);
    return out;
  };
  nlohmann::ordered_json include = nlohmann::ordered_json::array();
  if (spec.relation) {
    // GenEval: the reference first, then the subject "position"ed relative to include[0].
    include.push_back(requirement(spec.include.at(1)));
    include.push_back(requirement(spec.include.at(0)));
    include.back()["position"] = {name(*spec.relation), 0};
    for (size_t i = 2; i < spec.include.size(); ++i)
      include.push_back(requirement(spec.include[i]));
  } else {
    for (const auto& r : spec.include) include.push_back(requirement(r));
  }
  nlohmann::ordered_json metadata = {{"tag", name(spec.category)}, {"include", include}};
  if (spec.exact_count) {
    nlohmann::ordered_json exclude = nlohmann::ordered_json::array();
    for (const auto& r : include)
      exclude.push_back({{"class", r["class"]}, {"count", r["count"].get<int>() + 1}});
    metadata["exclude"] = exclude;
  }
  metadata["prompt"] = prompt;
  return metadata;
}

std::optional<PromptSpec> spec_from_geneval(const nlohmann::json& metadata,
                                            const std::string& where, std::string& unjudgeable) {
  auto fail = [&](const std::string& what) -> void { throw DataError(where + ": " + what); };
  auto count_of = [&](const nlohmann::json& row, const std::string& path) {
    const auto it = row.find("count");
    if (it == row.end() || !it->is_number_integer() || it->get<int>() < 1) {
      fail("field '" + path + ".count' must be a positive integer");
    }
    return it->get<int>();
  };
  auto class_of = [&](const nlohmann::json& row, const std::string& path) {
    const auto it = row.find("class");
    if (it == row.end() || !it->is_string()) fail("field '" + path + ".class' must be a string");
    return it->get<std::string>();
  };
  if (!metadata.is_object()) fail("GenEval metadata is a JSON object");
  const auto tag = metadata.find("tag");
  if (tag == metadata.end() || !tag->is_string()) fail("field 'tag' must be a string");
  const auto include = metadata.find("include");
  if (include == metadata.end() || !include->is_array() || include->empty()) {
    fail("field 'include' must be a non-empty array");
  }
  unjudgeable.clear();
  auto refuse = [&](const std::string& why) {
    unjudgeable = why;
    return std::nullopt;
  };
  PromptSpec spec;
  const auto category = category_from_name(tag->get<std::string>());
  if (!category) return refuse("tag '" + tag->get<std::string>() + "' is not a GenEval category");
  spec.category = *category;
  std::optional<size_t> subject;
  for (size_t i = 0; i < include->size(); ++i) {
    const auto& row = (*include)[i];
    const std::string path = "include[" + std::to_string(i) + "]";
    if (!row.is_object()) fail("field '" + path + "' must be an object");
    Requirement r;
    r.count = count_of(row, path);
    const std::string shape = class_of(row, path);
    const auto known = shape_from_name(shape);
    if (!known) return refuse("class '" + shape + "' is not a ShapeWorld shape");
    r.shape = *known;
    if (const auto color = row.find("color"); color != row.end()) {
      if (!color->is_string()) fail("field '" + path + ".color' must be a string");
      const auto known_color = color_from_name(color->get<std::string>());
      if (!known_color) {
        return refuse("colour '" + color->get<std::string>() + "' is not a ShapeWorld colour");
      }
      r.color = *known_color;
    }
    if (const auto position = row.find("position"); position != row.end()) {
      if (!position->is_array() || position->size() != 2 || !(*position)[0].is_string() ||
          !(*position)[1].is_number_integer()) {
        fail("field '" + path + ".position' must be [relation, index]");
      }
      const auto relation = relation_from_name((*position)[0].get<std::string>());
      if (!relation) fail("field '" + path + ".position': unknown relation");
      if (subject || i != 1 || (*position)[1].get<int>() != 0) {
        return refuse("a relation other than include[1] to include[0]");
      }
      spec.relation = *relation;
      subject = i;
    }
    spec.include.push_back(r);
  }
  if (const auto exclude = metadata.find("exclude"); exclude != metadata.end()) {
    if (!exclude->is_array()) fail("field 'exclude' must be an array");
    // Only "exactly N" of each requirement, as counting prompts ask, is corl's to judge.
    if (exclude->size() != spec.include.size()) return refuse("an exclusion of another form");
    for (size_t i = 0; i < exclude->size(); ++i) {
      const auto& row = (*exclude)[i];
      const std::string path = "exclude[" + std::to_string(i) + "]";
      if (!row.is_object()) fail("field '" + path + "' must be an object");
      const auto shape = shape_from_name(class_of(row, path));
      if (!shape || *shape != spec.include[i].shape ||
          count_of(row, path) != spec.include[i].count + 1) {
        return refuse("an exclusion of another form");
      }
    }
    spec.exact_count = true;
  }
  if (subject) std::swap(spec.include[0], spec.include[1]);  // corl: the subject first
  return spec;
}

}  // namespace corl::data
