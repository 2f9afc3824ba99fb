#include "corl/reward/remote.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "corl/data/render.h"  // defines: encode_png
#include "corl/util/error.h"
#ifdef CORL_HAVE_CURL
#include <curl/curl.h>
#endif

namespace corl::reward {
namespace {

// A reply larger than this is not a list of scores.
constexpr size_t kMaxReplyBytes = size_t{64} << 20;

std::string clip_text(const std::string& text, size_t n = 200) {
  return text.size() <= n ? text : text.substr(0, n) + "...";
}

// A finite number, or why not.
double finite_number(const nlohmann::json& value, const std::string& what) {
  if (!value.is_number()) {
    throw std::runtime_error(what + " is " + clip_text(value.dump(), 40) + ", not a number");
  }
  const double x = value.get<double>();
  if (!std::isfinite(x)) throw std::runtime_error(what + " is not finite");
  return x;
}

std::vector<double> number_list(const nlohmann::json& value, size_t count,
                                const std::string& what) {
  if (!value.is_array()) throw std::runtime_error(what + " is not a list");
  if (value.size() != count) {
    throw std::runtime_error(what + " holds " + std::to_string(value.size()) + " values for " +
                             std::to_string(count) + " rollouts");
  }
  std::vector<double> out;
  for (size_t i = 0; i < count; ++i) {
    out.push_back(finite_number(value[i], what + "[" + std::to_string(i) + "]"));
  }
  return out;
}

// What one try of a request came to: a body to parse, or an error and whether trying again
// could help.
struct Attempt {
  std::string body;
  std::string error;
  bool retry = false;
};

#ifdef CORL_HAVE_CURL
size_t append_reply(char* data, size_t size, size_t n, void* target) {
  auto* body = static_cast<std::string*>(target);
  if (body->size() + size * n > kMaxReplyBytes) return 0;  // curl stops with a write error
  body->append(data, size * n);
  return size * n;
}

Attempt post(const std::string& url, const std::string& payload, double timeout_s) {
  static std::once_flag initialised;  // curl_global_init is not thread-safe; call it once
  std::call_once(initialised, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  Attempt out;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return {"", "cannot start an HTTP request (curl_easy_init)", false};
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, curl_slist_free_all);
  const auto timeout_ms = static_cast<long>(std::ceil(timeout_s * 1000.0));
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is reported, never followed
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);        // timeouts without signals: threads are safe
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_reply);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  const CURLcode code = curl_easy_perform(c);
  if (code == CURLE_WRITE_ERROR) {
    return {"", "the reply is over " + std::to_string(kMaxReplyBytes >> 20) + " MiB", false};
  }
  if (code == CURLE_OPERATION_TIMEDOUT) {
    std::ostringstream limit;
    limit << timeout_s;
    return {"", "no reply within timeout_s " + limit.str() + " s", true};
  }
  if (code != CURLE_OK) {
    const bool permanent = code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT;
    return {"", std::string(curl_easy_strerror(code)), !permanent};
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status == 200) return out;
  if (status >= 300 && status < 400) {
    char* location = nullptr;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
    return {"",
            "HTTP " + std::to_string(status) + ", a redirect" +
                (location ? std::string(" to ") + location : std::string()) +
                "; remote rewards follow no redirects: give the final URL",
            false};
  }
  const bool retry = status >= 500 || status == 429;
  return {"", "HTTP " + std::to_string(status) + ": " + clip_text(out.body), retry};
}
#endif  // CORL_HAVE_CURL

// Scores one batch, trying again after transport failures. Throws std::runtime_error.
RemoteScores score_batch(const RemoteOptions& options, const std::string& payload, size_t count,
                         const std::atomic<bool>& stop) {
#ifdef CORL_HAVE_CURL
  double delay = options.retry_delay_s;
  for (int attempt = 0;; ++attempt) {
    const Attempt reply = post(options.url, payload, options.timeout_s);
    if (reply.error.empty()) return parse_reply(reply.body, count);
    if (!reply.retry || attempt == options.retries || stop) {
      throw std::runtime_error(
          reply.error + (attempt > 0 ? " (tried " + std::to_string(attempt + 1) + " times)" : ""));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    delay *= 2.0;
  }
#else
  (void)options, (void)payload, (void)count, (void)stop;
  throw std::logic_error("remote rewards need libcurl");
#endif
}

}  // namespace

void check_remote_options(const RemoteOptions& o, const std::string& key) {
  const auto scheme_end = o.url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : o.url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    throw RecipeError(key + ".url: '" + o.url +
                      "' is not an http:// or https:// URL; give the scorer's endpoint, e.g. "
                      "http://127.0.0.1:8000/score");
  }
  const auto host = o.url.substr(scheme_end + 3);
  if (host.empty() || host[0] == '/' || host[0] == ':') {
    throw RecipeError(key + ".url: '" + o.url + "' names no host");
  }
  if (o.task != "t2i" && o.task != "mm2t") {
    throw RecipeError(key + ".task: must be t2i (scores images) or mm2t (scores answers), got '" +
                      o.task + "'");
  }
}

std::string base64(const std::vector<unsigned char>& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v = (bytes[i] << 16) | (two ? bytes[i + 1] << 8 : 0);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

nlohmann::json row_fields(const data::Record& row) {
  nlohmann::json out = {{"id", row.id},
                        {"prompt", row.prompt},
                        {"question", row.qa_problem},
                        {"solution", row.qa_solution},
                        {"qa_type", row.qa_type},
                        {"category", row.category}};
  if (row.spec) out["spec"] = data::to_json(*row.spec);
  if (row.scene) out["scene"] = data::to_json(*row.scene);
  if (!row.image.empty()) out["image"] = base64(data::encode_png(row.image));
  return out;
}

nlohmann::json image_item(const std::string& prompt, const cv::Mat& image,
                          const nlohmann::json& row) {
  return {{"prompt", prompt}, {"image", base64(data::encode_png(image))}, {"row", row}};
}

nlohmann::json answer_item(const std::string& completion, const nlohmann::json& row) {
  return {{"completion", completion}, {"row", row}};
}

RemoteScores parse_reply(const std::string& body, size_t count) {
  nlohmann::json reply;
  try {
    reply = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error&) {
    const bool nan =
        body.find("NaN") != std::string::npos || body.find("Infinity") != std::string::npos;
    throw std::runtime_error(nan ? "the reply holds NaN or Infinity, which JSON cannot carry: "
                                   "a score must be a finite number"
                                 : "the reply is not JSON: '" + clip_text(body) + "'");
  }
  if (!reply.is_object() || !reply.contains("scores")) {
    throw std::runtime_error("the reply has no \"scores\": '" + clip_text(body) + "'");
  }
  RemoteScores out;
  out.scores = number_list(reply["scores"], count, "\"scores\"");
  if (reply.contains("sub_scores")) {
    const auto& subs = reply["sub_scores"];
    if (!subs.is_object()) throw std::runtime_error("\"sub_scores\" is not an object of lists");
    for (const auto& [name, values] : subs.items()) {
      out.sub_scores[name] = number_list(values, count, "\"sub_scores\"." + name);
    }
  }
  return out;
}

RemoteReward::RemoteReward(std::string name, RemoteOptions options)
    : name_(std::move(name)), options_(std::move(options)) {
#ifndef CORL_HAVE_CURL
  throw UsageError("remote reward '" + name_ +
                   "': this corl was built without libcurl (Debian's libcurl4-openssl-dev), so "
                   "it cannot reach a reward server");
#endif
}

PendingScores RemoteReward::score(std::vector<nlohmann::json> items, int step) const {
  auto work = [name = name_, options = options_, items = std::move(items), step] {
    const size_t n = items.size();
    const size_t size = static_cast<size_t>(options.batch_size);
    const size_t batches = (n + size - 1) / size;
    std::vector<RemoteScores> results(batches);
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex failure_mutex;
    std::string failure;
    const auto worker = [&] {
      while (!stop) {
        const size_t b = next++;
        if (b >= batches) break;
        const size_t begin = b * size;
        const size_t end = std::min(n, begin + size);
        const nlohmann::json request = {
            {"reward", name},
            {"task", options.task},
            {"items", nlohmann::json(std::vector<nlohmann::json>(items.begin() + begin,
                                                                 items.begin() + end))}};
        try {
          results[b] = score_batch(options, request.dump(), end - begin, stop);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (failure.empty()) {
            failure = "batch " + std::to_string(b + 1) + " of " + std::to_string(batches) + ": " +
                      e.what();
          }
          stop = true;
        }
      }
    };
    std::vector<std::thread> threads;
    const size_t width = std::min(batches, static_cast<size_t>(options.max_in_flight));
    for (size_t t = 0; t < width; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (!failure.empty()) {
      throw RemoteRewardError("remote reward '" + name + "' (" + options.url + "), step " +
                              std::to_string(step) + ": " + failure);
    }
    RemoteScores joined;
    for (auto& r : results) {
      joined.scores.insert(joined.scores.end(), r.scores.begin(), r.scores.end());
    }
    // A sub-score every batch reports is kept; one that only some report cannot be logged whole.
    if (!results.empty()) {
      for (const auto& [sub, values] : results.front().sub_scores) {
        std::vector<double> all;
        for (auto& r : results) {
          const auto found = r.sub_scores.find(sub);
          if (found == r.sub_scores.end()) break;
          all.insert(all.end(), found->second.begin(), found->second.end());
        }
        if (all.size() == n) joined.sub_scores[sub] = std::move(all);
      }
    }
    return joined;
  };
  return PendingScores(std::async(std::launch::async, std::move(work)));
}

}  // namespace corl::reward
