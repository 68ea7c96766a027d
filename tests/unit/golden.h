// Golden files under tests/data/: a generator's output must equal the file.
// NATPILOT_UPDATE_GOLDEN=1 rewrites the files instead (review the diff before committing).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace natpilot::testing {

inline void ExpectGolden(const std::string& text, const std::string& path) {
  if (std::getenv("NATPILOT_UPDATE_GOLDEN")) std::ofstream(path) << text;
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path;
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(text, want.str()) << "differs from " << path;
}

}  // namespace natpilot::testing
