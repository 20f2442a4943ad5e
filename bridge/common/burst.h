#ifndef BRIDGE_COMMON_BURST_H_
#define BRIDGE_COMMON_BURST_H_

#include <cstddef>

namespace bridge {

// The lists and queues of the hot path are reused from one round to the next, so that
// steady traffic never reallocates them; but a burst may grow one far past what steady
// traffic needs, and a connection that went quiet should not keep that memory.

// Empties `c`, giving its memory back when a burst grew it past `kept` entries. `C` is a
// std::vector, a boost::circular_buffer or the like.
template <class C>
void ClearAfterBurst(C& c, size_t kept) {
  if (c.capacity() > kept) {
    C().swap(c);
  } else {
    c.clear();
  }
}

// Runs `each` on every entry of `round`, a list taken whole from where other threads add
// to it (swapped out under their lock), then empties it for the next round.
template <class C, class F>
void RunRound(C& round, size_t kept, F&& each) {
  for (auto& entry : round) each(entry);
  ClearAfterBurst(round, kept);
}

}  // namespace bridge

#endif  // BRIDGE_COMMON_BURST_H_
