// API tokens: 32 random bytes as hex behind a prefix ("npa_" admin, "npd_" device). Only the
// SHA-256 (hex) of a token is ever stored.
#pragma once

#include <string>
#include <string_view>

namespace natpilot {

std::string NewToken(std::string_view prefix);
std::string HashToken(std::string_view token);
// The admin token from its file, made (mode 0600, never overwritten) when the file is missing.
// Throws std::runtime_error naming the file.
std::string LoadOrCreateAdminToken(const std::string& path);

}  // namespace natpilot
