// libFuzzer target for the parsers of what a UPnP gateway sends back (miniupnpc's, the code that
// reads these bytes in natpilotd): the root description, SOAP answers, and IGDv2 port listings.
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/portlistingparse.h>
#include <miniupnpc/upnpreplyparse.h>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const int n = static_cast<int>(size);
  IGDdatas igd{};
  parserootdesc(text, n, &igd);
  NameValueParserData reply{};
  ParseNameValue(text, n, &reply);
  (void)GetValueFromNameValueList(&reply, "NewExternalIPAddress");
  (void)GetValueFromNameValueList(&reply, "errorCode");
  (void)GetValueFromNameValueList(&reply, "NewReservedPort");
  ClearNameValueList(&reply);
  PortMappingParserData listing{};
  ParsePortListing(text, n, &listing);
  FreePortListing(&listing);
  return 0;
}
