#include "app/tokens.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

namespace {

// A new token in a private file at `path`, atomically: written to a random name in the same folder,
// flushed, then put in place (link: only where nothing is; rename: replacing an empty file). A
// crash or a full disk never leaves an empty token file behind.
std::string CreateTokenFile(const std::string& path, bool replace) {
  const std::string token = NewToken("npa_");
  const std::string line = token + "\n";
  std::string tmp = path + ".XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("admin token file '" + path +
                             "': cannot create it: " + std::strerror(errno));
  const bool ok = ::fchmod(fd, 0600) == 0 &&
                  ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  const bool placed = ok && (replace ? ::rename(tmp.c_str(), path.c_str()) == 0
                                     : ::link(tmp.c_str(), path.c_str()) == 0);
  const int err = errno;
  ::unlink(tmp.c_str());
  if (!placed) {
    if (!replace && ok && err == EEXIST) return "";  // another process made it first: read that one
    throw std::runtime_error("admin token file '" + path +
                             "': cannot write it: " + std::strerror(err));
  }
  return token;
}

}  // namespace

std::string LoadOrCreateAdminToken(const std::string& path) {
  const auto refuse = [&](const std::string& why) {
    return std::runtime_error("admin token file '" + path + "' " + why);
  };
  // Never through a symlink (someone could point it at a file of theirs), only a regular file of
  // this user that nobody else can read.
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT) {
    if (std::string made = CreateTokenFile(path, false); !made.empty()) return made;
    fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  }
  if (fd < 0) {
    if (errno == ELOOP) throw refuse("is a symbolic link; it must be a regular file");
    throw refuse(std::string("cannot be read: ") + std::strerror(errno));
  }
  struct stat st {};
  char buf[512];
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (!S_ISREG(st.st_mode)) throw refuse("is not a regular file");
  if (st.st_uid != ::geteuid()) {
    throw refuse("belongs to uid " + std::to_string(st.st_uid) + ", not to natpilotd's uid " +
                 std::to_string(::geteuid()) + "; chown it or remove it");
  }
  if ((st.st_mode & 077) != 0) throw refuse("is readable by others; make it private (chmod 600)");
  if (n < 0) throw refuse(std::string("cannot be read: ") + std::strerror(errno));
  if (n == 0) {
    // Left empty (a crash or a full disk under an older natpilotd): nothing to lose, make a new
    // one.
    return CreateTokenFile(path, true);
  }
  std::string_view text(buf, static_cast<size_t>(n));
  text = text.substr(0, text.find('\n'));
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  const bool printable =
      std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (text.size() < 16 || text.size() > 256 || !printable) {
    throw refuse(
        "holds no token (16 to 256 printable characters without spaces on the first line); "
        "remove the file and a new token is made");
  }
  return std::string(text);
}

}  // namespace natpilot
