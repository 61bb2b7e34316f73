// Control side: diagnostics collection and formatting.
#include "rules/diagnostics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace tagwall::rules {

std::string SourcePos::str() const {
    if (line <= 0) return file;
    return fmt::format("{}:{}:{}", file, line, col);
}

std::string Diagnostic::str() const {
    const char* kind = severity == Severity::error ? "error" : severity == Severity::warning ? "warning" : "note";
    return fmt::format("{}: {}: {}", pos.str(), kind, message);
}

void Diagnostics::error(SourcePos pos, std::string message) {
    items_.push_back({Severity::error, std::move(pos), std::move(message)});
    ++errors_;
}

void Diagnostics::warning(SourcePos pos, std::string message) {
    items_.push_back({Severity::warning, std::move(pos), std::move(message)});
}

void Diagnostics::note(SourcePos pos, std::string message) {
    items_.push_back({Severity::note, std::move(pos), std::move(message)});
}

std::vector<Diagnostic> Diagnostics::sorted() const {
    auto out = items_;
    std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
        if (a.pos.file != b.pos.file) return a.pos.file < b.pos.file;
        if (a.pos.line != b.pos.line) return a.pos.line < b.pos.line;
        return a.pos.col < b.pos.col;
    });
    return out;
}

static std::string join_errors(const std::vector<Diagnostic>& ds) {
    std::string out;
    for (const auto& d : ds) {
        if (d.severity != Severity::error) continue;
        if (!out.empty()) out += '\n';
        out += d.str();
    }
    return out.empty() ? "invalid policy" : out;
}

PolicyError::PolicyError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join_errors(diagnostics)), diagnostics_(std::move(diagnostics)) {}

// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions
// all cost one, so "shop-wbe" is closer to "shop-web" than to "shop-db".
size_t edit_distance(const std::string& a, const std::string& b) {
    const size_t n = a.size(), m = b.size();
    std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
    for (size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (size_t i = 1; i <= n; ++i) {
        for (size_t j = 1; j <= m; ++j) {
            const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[n][m];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        const size_t d = edit_distance(word, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

}  // namespace tagwall::rules
