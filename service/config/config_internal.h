// Shared by config.cc and config_sections.cc only: the readers of single TOML values, and the
// loader of each section. All throw std::runtime_error naming the key; LoadConfigText adds the
// file's name.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <set>
#include <string>
#include <type_traits>

#include "config/config.h"

namespace natpilot::config_internal {

[[noreturn]] void Bad(const std::string& key, const std::string& what);
// Refuses a key of `table` not in `allowed`; `prefix` ("api.") makes the key's full name.
void CheckKeys(const toml::table& table, const std::string& prefix,
               const std::set<std::string>& allowed);

// Reads `key` of `t` into `out` when present, refusing a value of another type.
template <typename T>
void Get(const toml::table& t, const std::string& section, const char* key, T& out) {
  const auto* node = t.get(key);
  if (!node) return;
  const std::string name = section.empty() ? key : section + "." + key;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!node->is_string()) Bad(name, "must be a string");
    out = *node->value<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!node->is_boolean()) Bad(name, "must be true or false");
    out = *node->value<bool>();
  } else {
    if (!node->is_integer()) Bad(name, "must be an integer");
    out = static_cast<T>(*node->value<int64_t>());
  }
}

// An integer in [min, max]; `value` when the key is absent.
int64_t GetInt(const toml::table& t, const std::string& section, const char* key, int64_t value,
               int64_t min, int64_t max);
// The [name] table of `root`; an empty one when absent.
const toml::table& Section(const toml::table& root, const char* name);
// A port range such as "5060-5070"; `value` when the key is absent or "".
PortRange Range(const toml::table& t, const std::string& section, const char* key, PortRange value);

// Each reads its part of `root` over `c`, refusing a table's unknown keys before reading its
// values.
void LoadTopLevel(const toml::table& root, Config& c);  // database, release_on_shutdown
void LoadApi(const toml::table& root, Config& c);
void LoadGateway(const toml::table& root, Config& c);
void LoadPolicy(const toml::table& root, Config& c);
void LoadDefaults(const toml::table& root, Config& c);
void LoadEvents(const toml::table& root, Config& c);
void LoadRules(const toml::table& root, Config& c);
void LoadIdentity(const toml::table& root, Config& c);
void LoadWeb(const toml::table& root, Config& c);
void LoadDoctor(const toml::table& root, Config& c);
void LoadPbx(const toml::table& root, Config& c);  // every [[pbx]] table
void LoadLog(const toml::table& root, Config& c);

}  // namespace natpilot::config_internal
