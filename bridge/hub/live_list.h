#ifndef BRIDGE_HUB_LIVE_LIST_H_
#define BRIDGE_HUB_LIVE_LIST_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "bridge/hub/subscriber.h"

namespace bridge::hub {

// The subscribers a topic's messages go to. Immutable: a join or a leave makes a new list
// (With, Without) and the hub swaps it in, so the fan-out iterates a snapshot without the
// hub's lock.
//
// The subscribers are kept in chunks of at most kChunk, shared between successive lists:
// a new list copies the chunk pointers and the one chunk that changed, not every
// subscriber. A topic with N subscribers thus takes a join in O(N / kChunk + kChunk)
// instead of O(N), and N joins in about N^2 / kChunk instead of N^2: 100,000 browsers on
// one broadcast channel connect without stalling the fan-out.
class LiveList {
 public:
  static constexpr size_t kChunk = 256;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool Contains(const Subscriber* s) const;

  // This list and `s` (not already in it).
  std::shared_ptr<const LiveList> With(std::shared_ptr<Subscriber> s) const;
  // This list and every one of `more`.
  std::shared_ptr<const LiveList> WithAll(std::vector<std::shared_ptr<Subscriber>> more) const;
  // This list without `s`, or null when `s` is not in it.
  std::shared_ptr<const LiveList> Without(const Subscriber* s) const;

  // Calls f(const std::shared_ptr<Subscriber>&) for each subscriber, in join order.
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& chunk : chunks_) {
      for (const auto& s : *chunk) f(s);
    }
  }

 private:
  using Chunk = std::vector<std::shared_ptr<Subscriber>>;

  std::vector<std::shared_ptr<const Chunk>> chunks_;
  size_t size_ = 0;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_LIVE_LIST_H_
