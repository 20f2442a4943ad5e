#include "bridge/redis/cluster_slot.h"

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

}  // namespace bridge::redis
