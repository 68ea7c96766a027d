// The status page's files (web/), embedded in natpilotd at build time: nothing is fetched at run
// time, from the internet or the disk.
#pragma once

#include <string_view>
#include <vector>

namespace natpilot::web {

struct Asset {
  std::string_view path;  // "/index.html", served at "/" too
  std::string_view type;  // Content-Type
  std::string_view body;
};

const std::vector<Asset>& Assets();

}  // namespace natpilot::web
