#include "bridge/redis/cluster_slot.h"

#include "absl/strings/str_cat.h"

namespace bridge::redis {

uint16_t Crc16(std::string_view data) {
  // Bit by bit rather than Redis' 256-entry table: a channel name is hashed once per
  // subscribe or publish, far from any hot loop.
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<uint16_t>(byte) << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

int KeySlot(std::string_view name) {
  const size_t open = name.find('{');
  if (open != std::string_view::npos) {
    const size_t close = name.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      name = name.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(name) & (kClusterSlots - 1);
}

std::string HashTagInRanges(const std::vector<std::pair<int, int>>& ranges) {
  bool any = false;
  for (const auto& [first, last] : ranges) any = any || first <= last;
  if (!any) return {};
  // Every one of the 16384 slots is the slot of some decimal below 109758 (the test
  // checks the slots that come last), so a range of a single slot is found within that
  // many CRCs of six bytes at most: about a millisecond, once per shard connection.
  constexpr int kEnough = 110000;
  for (int n = 0; n < kEnough; ++n) {
    const std::string tag = absl::StrCat(n);
    const int slot = Crc16(tag) & (kClusterSlots - 1);
    for (const auto& [first, last] : ranges) {
      if (slot >= first && slot <= last) return absl::StrCat("{", tag, "}");
    }
  }
  return {};
}

}  // namespace bridge::redis
