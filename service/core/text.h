// Text that came from outside (a gateway, a LAN host, a hook's output) made safe to travel: valid
// UTF-8 (protobuf strings and JSON need it), no control characters (ESC sequences would reach an
// admin's terminal, a newline a config file), no bidirectional overrides, bounded in bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace natpilot {

// The length (1-4) of the well-formed UTF-8 sequence at text[i], its code point in *cp; 0 when
// the bytes there are not one (overlong forms, surrogates and values above U+10FFFF included).
size_t Utf8Sequence(std::string_view text, size_t i, uint32_t* cp);
// C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates.
bool IsUnsafeCodePoint(uint32_t cp);
// Every invalid byte and unsafe code point becomes U+FFFD; cut at a code point boundary so the
// result has at most max_bytes bytes.
std::string SafeText(std::string_view text, size_t max_bytes = 1024);
// The first unsafe spot, for error messages: "" when `text` is safe as it is, else e.g.
// "is not valid UTF-8 at byte 7", "contains control character 0x1b at byte 3".
std::string UnsafeTextReason(std::string_view text);

}  // namespace natpilot
