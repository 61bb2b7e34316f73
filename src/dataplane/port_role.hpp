// A port's role (SPEC §3 `role: workload | uplink`): what SpoofGuard checks on it (identity.hpp) and,
// in switch mode, which MACs may be learned there (pipeline.hpp).
#pragma once

#include <cstdint>

namespace tagwall::dataplane {

enum class PortRole : uint8_t { workload, uplink };

}  // namespace tagwall::dataplane
