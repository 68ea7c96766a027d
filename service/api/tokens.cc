#include "api/tokens.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace natpilot {
namespace {

std::string Hex(const unsigned char* data, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string NewToken(std::string_view prefix) {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no randomness for a token");
  return std::string(prefix) + Hex(bytes, sizeof bytes);
}

std::string HashToken(std::string_view token) {
  // Fetched once: OpenSSL 3 looks the implementation up in its providers on every implicit use.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(token.data(), token.size(), digest, &n, kSha256, nullptr);
  return Hex(digest, n);
}

std::string LoadOrCreateAdminToken(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    const std::string token = NewToken("npa_");
    const std::string line = token + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("admin token file '" + path + "': cannot write it");
    return token;
  }
  if (errno != EEXIST) {
    throw std::runtime_error("admin token file '" + path + "': cannot create it: " + std::strerror(errno));
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    throw std::runtime_error("admin token file '" + path +
                             "' is readable by others; make it private (chmod 600)");
  }
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  if (token.size() < 16) {
    throw std::runtime_error("admin token file '" + path +
                             "' holds no token (at least 16 characters on the first line)");
  }
  return token;
}

}  // namespace natpilot
