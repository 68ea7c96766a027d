// Tokens, the admin token file and the write rate limit.
#include "api/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace natpilot {
namespace {

TEST(Tokens, AreRandomPrefixedAndHashedWithSha256) {
  const std::string a = NewToken("npd_"), b = NewToken("npd_");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("npd_", 0), 0u);
  EXPECT_EQ(a.size(), 68u);
  // The SHA-256 test vector of "abc" (FIPS 180-2).
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AdminTokenFile, IsMadePrivateOnceAndThenRead) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("natpilot-token-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "admin.token").string();
  const std::string made = LoadOrCreateAdminToken(path);
  EXPECT_EQ(made.rfind("npa_", 0), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(LoadOrCreateAdminToken(path), made);  // never overwritten
  ::chmod(path.c_str(), 0644);
  EXPECT_THROW(LoadOrCreateAdminToken(path), std::runtime_error);  // readable by others: refused
  ::chmod(path.c_str(), 0600);
  { std::ofstream(path, std::ios::trunc) << "short\n"; }
  EXPECT_THROW(LoadOrCreateAdminToken(path), std::runtime_error);
  { std::ofstream(path, std::ios::trunc) << "npa_0123456789abcdef\x1b[2J\n"; }
  EXPECT_THROW(LoadOrCreateAdminToken(path), std::runtime_error);  // control characters: no token
  // Empty (a crash or a full disk): a new token, not a daemon that can never start again.
  { std::ofstream(path, std::ios::trunc); }
  const std::string fresh = LoadOrCreateAdminToken(path);
  EXPECT_EQ(fresh.rfind("npa_", 0), 0u);
  EXPECT_EQ(LoadOrCreateAdminToken(path), fresh);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A symlink planted at the path is refused, whatever it points to.
  const std::string target = (dir / "elsewhere").string();
  { std::ofstream(target) << "npa_0123456789abcdef0123\n"; }
  ::chmod(target.c_str(), 0600);
  std::filesystem::remove(path);
  std::filesystem::create_symlink(target, path);
  try {
    LoadOrCreateAdminToken(path);
    ADD_FAILURE() << "a symlink was followed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
  // No temporary files are left in the folder.
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 2u);  // admin.token (the link) and elsewhere: no admin.token.XXXXXX
  std::filesystem::remove_all(dir);
}

TEST(RateLimiter, GivesEachCallerItsBurstThenTheRate) {
  RateLimiter::Clock::time_point now{};
  RateLimiter limiter(2, 3, [&] { return now; });
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Allow("a")) << i;
  auto refused = limiter.Allow("a");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, make_error_code(Errc::kResourceExhausted));
  EXPECT_NE(refused.error().message.find("retry in 500 ms"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(limiter.Allow("b"));  // another caller has its own bucket
  now += std::chrono::milliseconds(500);
  EXPECT_TRUE(limiter.Allow("a"));
  EXPECT_FALSE(limiter.Allow("a"));
  now += std::chrono::seconds(100);  // refills up to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Allow("a")) << i;
  EXPECT_FALSE(limiter.Allow("a"));
}

TEST(RateLimiter, ZeroRateMeansNoLimit) {
  RateLimiter limiter(0, 1);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Allow("a"));
}

}  // namespace
}  // namespace natpilot
