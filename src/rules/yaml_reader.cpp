// Control side: defensive YAML reading shared by the policy and config loaders (see yaml_reader.hpp).
#include "rules/yaml_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>

namespace tagwall::rules {

bool within_size_limit(size_t size, const std::string& name, size_t max_bytes, std::string_view what,
                       Diagnostics& diag) {
    if (size <= max_bytes) return true;
    diag.error({name, 1, 1}, fmt::format("the {} is {:.1f} MB, more than the {} MB limit; refusing to parse it", what,
                                         static_cast<double>(size) / (1 << 20), max_bytes >> 20));
    return false;
}

std::optional<std::string> read_yaml_file(const std::string& path, size_t max_bytes, std::string_view what,
                                          Diagnostics& diag) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
        diag.error({path, 0, 0}, std::filesystem::is_directory(status) ? "cannot read: it is a directory"
                                                                         : "cannot read: not a regular file");
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        diag.error({path, 0, 0}, fmt::format("cannot open: {}", std::strerror(errno)));
        return std::nullopt;
    }
    in.seekg(0, std::ios::end);
    const auto size = in.tellg();
    if (size < 0) {
        diag.error({path, 0, 0}, "cannot read: not a regular file");
        return std::nullopt;
    }
    if (!within_size_limit(static_cast<size_t>(size), path, max_bytes, what, diag)) return std::nullopt;
    in.seekg(0);
    std::string text(static_cast<size_t>(size), '\0');
    if (!in.read(text.data(), size)) {
        diag.error({path, 0, 0}, "cannot read the whole file");
        return std::nullopt;
    }
    return text;
}

std::optional<YAML::Node> parse_yaml(const std::string& text, const std::string& name, Diagnostics& diag) {
    try {
        return YAML::Load(text);
    } catch (const YAML::DeepRecursion& e) {
        const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
        const int col = e.mark.is_null() ? 1 : e.mark.column + 1;
        diag.error({name, line, col}, fmt::format("YAML syntax: nesting deeper than {} levels; "
                                                  "a policy never needs more than 5", e.depth()));
    } catch (const YAML::Exception& e) {
        const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
        const int col = e.mark.is_null() ? 1 : e.mark.column + 1;
        diag.error({name, line, col}, fmt::format("YAML syntax: {}", e.msg));
    }
    return std::nullopt;
}

YamlReader::YamlReader(std::string file, Diagnostics& diag, size_t max_errors, size_t visit_budget)
    : file_(std::move(file)), diag_(diag), max_errors_(max_errors), visit_budget_(visit_budget) {}

const char* YamlReader::kind_name(const YAML::Node& n) {
    switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    default: return "an undefined node";
    }
}

SourcePos YamlReader::pos(const YAML::Node& n) const {
    const auto m = n.Mark();
    if (m.is_null()) return {file_, 0, 0};
    return {file_, m.line + 1, m.column + 1};
}

void YamlReader::error(const YAML::Node& n, std::string msg) {
    if (stopped_) return;
    if (diag_.error_count() >= max_errors_) {
        diag_.error(pos(n), fmt::format("too many errors ({}); stopping here", max_errors_));
        stopped_ = true;
        return;
    }
    diag_.error(pos(n), std::move(msg));
}

bool YamlReader::visit(const YAML::Node&) {
    if (stopped_) return false;
    if (++visits_ <= visit_budget_) return true;
    diag_.error({file_, 1, 1}, fmt::format("the document expands to more than {} nodes (aliases?); refusing "
                                           "to process it", visit_budget_));
    stopped_ = true;
    return false;
}

bool YamlReader::expect(const YAML::Node& n, YAML::NodeType::value type, const std::string& what) {
    if (n.Type() == type) return true;
    const char* want = type == YAML::NodeType::Map ? "a map" : type == YAML::NodeType::Sequence ? "a list" : "a scalar";
    error(n, fmt::format("{} must be {}, not {}", what, want, kind_name(n)));
    return false;
}

YamlReader::KeyMap YamlReader::keys_of(const YAML::Node& map, const Keys& allowed, const std::string& what) {
    KeyMap out;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!visit(it->second)) break;
        if (!it->first.IsScalar()) {
            error(it->first, fmt::format("keys of {} must be plain words, not {}", what, kind_name(it->first)));
            continue;
        }
        const std::string key = it->first.Scalar();
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
            const auto hint = closest_match(key, allowed);
            error(it->first, hint.empty() ? fmt::format("unknown key '{}' in {}", key, what)
                                          : fmt::format("unknown key '{}' in {} (did you mean '{}'?)", key, what, hint));
            continue;
        }
        if (!out.emplace(key, it->second).second) error(it->first, fmt::format("duplicate key '{}' in {}", key, what));
    }
    return out;
}

std::optional<std::string> YamlReader::scalar(const YAML::Node& n, const std::string& what) {
    if (n.IsScalar()) return n.Scalar();
    error(n, fmt::format("{} must be a single value, not {}", what, kind_name(n)));
    return std::nullopt;
}

std::optional<uint64_t> YamlReader::number(const YAML::Node& n, const std::string& what, uint64_t min, uint64_t max) {
    const auto s = scalar(n, what);
    if (!s) return std::nullopt;
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (s->empty() || ec != std::errc{} || end != s->data() + s->size() || v < min || v > max) {
        error(n, fmt::format("{} must be a number from {} to {}, not '{}'", what, min, max, *s));
        return std::nullopt;
    }
    return v;
}

}  // namespace tagwall::rules
