#include "bridge/hub/live_list.h"

#include <algorithm>
#include <utility>

namespace bridge::hub {

bool LiveList::Contains(const Subscriber* s) const {
  for (const auto& chunk : chunks_) {
    for (const auto& x : *chunk) {
      if (x.get() == s) return true;
    }
  }
  return false;
}

std::shared_ptr<const LiveList> LiveList::With(std::shared_ptr<Subscriber> s) const {
  std::vector<std::shared_ptr<Subscriber>> one;
  one.push_back(std::move(s));
  return WithAll(std::move(one));
}

std::shared_ptr<const LiveList> LiveList::WithAll(
    std::vector<std::shared_ptr<Subscriber>> more) const {
  auto out = std::make_shared<LiveList>(*this);
  out->size_ += more.size();
  size_t next = 0;
  // The last chunk, if it has room, is copied and filled; then new chunks.
  if (!out->chunks_.empty() && out->chunks_.back()->size() < kChunk && !more.empty()) {
    auto last = std::make_shared<Chunk>(*out->chunks_.back());
    last->reserve(kChunk);
    while (last->size() < kChunk && next < more.size()) last->push_back(std::move(more[next++]));
    out->chunks_.back() = std::move(last);
  }
  while (next < more.size()) {
    auto chunk = std::make_shared<Chunk>();
    chunk->reserve(std::min(kChunk, more.size() - next));
    while (chunk->size() < kChunk && next < more.size()) chunk->push_back(std::move(more[next++]));
    out->chunks_.push_back(std::move(chunk));
  }
  return out;
}

std::shared_ptr<const LiveList> LiveList::Without(const Subscriber* s) const {
  for (size_t c = 0; c < chunks_.size(); ++c) {
    const Chunk& chunk = *chunks_[c];
    auto it = std::find_if(chunk.begin(), chunk.end(),
                           [s](const std::shared_ptr<Subscriber>& x) { return x.get() == s; });
    if (it == chunk.end()) continue;
    auto out = std::make_shared<LiveList>(*this);
    out->size_ -= 1;
    if (chunk.size() == 1) {
      out->chunks_.erase(out->chunks_.begin() + static_cast<std::ptrdiff_t>(c));
    } else {
      auto smaller = std::make_shared<Chunk>();
      smaller->reserve(chunk.size() - 1);
      smaller->insert(smaller->end(), chunk.begin(), it);
      smaller->insert(smaller->end(), it + 1, chunk.end());
      out->chunks_[c] = std::move(smaller);
    }
    return out;
  }
  return nullptr;
}

}  // namespace bridge::hub
