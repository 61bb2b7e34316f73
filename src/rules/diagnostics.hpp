// Positioned diagnostics for everything the operator writes (policy and config files).
//
// Control side only.  Loaders collect every problem they can find rather than stopping at the first,
// then either hand back a model or throw PolicyError carrying the whole list.  Positions are 1-based,
// in the `FILE:LINE:COL: message` form that editors and CI annotators understand.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace tagwall::rules {

struct SourcePos {
    std::string file;
    int line = 0;  // 1-based; 0 when unknown
    int col = 0;   // 1-based; 0 when unknown
    std::string str() const;  // "file:line:col"
};

enum class Severity { error, warning, note };

struct Diagnostic {
    Severity severity = Severity::error;
    SourcePos pos;
    std::string message;
    std::string str() const;  // "file:line:col: error: message"
};

class Diagnostics {
public:
    void error(SourcePos pos, std::string message);
    void warning(SourcePos pos, std::string message);
    void note(SourcePos pos, std::string message);

    bool has_errors() const noexcept { return errors_ > 0; }
    size_t error_count() const noexcept { return errors_; }
    // Stable sort by file position, so the list reads top to bottom like the file.
    std::vector<Diagnostic> sorted() const;
    const std::vector<Diagnostic>& items() const noexcept { return items_; }

private:
    std::vector<Diagnostic> items_;
    size_t errors_ = 0;
};

// Thrown by the loader/compiler when the input has errors; what() is every error, one per line.
class PolicyError : public std::runtime_error {
public:
    explicit PolicyError(std::vector<Diagnostic> diagnostics);
    const std::vector<Diagnostic>& diagnostics() const noexcept { return diagnostics_; }

private:
    std::vector<Diagnostic> diagnostics_;
};

// Edit distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The closest candidate within a small distance, or "" when none is close enough.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tagwall::rules
