#ifndef BRIDGE_WS_LOOP_H_
#define BRIDGE_WS_LOOP_H_

#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"

namespace bridge::ws {

class WsSession;

// One I/O thread of the WebSocket front end, with an io_context of its own. Every
// connection handed to a loop lives on its thread alone, so a session's handlers never
// run at once without a strand.
//
// The hub wakes sessions from its own thread. Rather than a handler per session, the loop
// keeps a ready list: the first session marked ready posts one handler, which takes every
// session marked since and lets each write its events. Under load one wake-up serves
// many sessions.
//
// Nothing from another thread reaches the io_context but through MarkReady and Post,
// which stop posting once the loop is stopped: Discard may then destroy it. Neither
// makes a strong reference to a session on the calling thread, so a session is never
// destroyed off its loop once the loop is gone. Owned by WsServer, shared with what
// may call in from other threads after the server let go (hub sinks, publish answers);
// outlives every session on it.
class Loop : public std::enable_shared_from_this<Loop> {
 public:
  Loop();
  // Stops, joins the thread and discards what is queued, if that was not done.
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::io_context& context() { return *ioc_; }
  // Starts the thread. Call once.
  void Start();
  // Stops the io_context and joins the thread; MarkReady and Post are ignored from now on.
  // Handlers still queued are kept until Discard.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // After Stop: destroys the io_context with the handlers still queued, and the sessions
  // they hold. The loop itself stays valid for MarkReady from other threads.
  void Discard() ABSL_LOCKS_EXCLUDED(mu_);

  // From any thread: `session` has hub events; its OnHubReady runs on this loop soon,
  // if it is still alive. The strong reference the ready list keeps is taken under the
  // loop's lock, and only while the loop runs.
  void MarkReady(const std::weak_ptr<WsSession>& session) ABSL_LOCKS_EXCLUDED(mu_);

  // From any thread: runs `handler` on this loop, or drops it (on the caller's thread)
  // once the loop is stopped. It must hold sessions weakly: it may be destroyed
  // unrun, here or by Discard.
  template <class Handler>
  void Post(Handler&& handler) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    boost::asio::post(*ioc_, std::forward<Handler>(handler));
  }

 private:
  void RunReady() ABSL_LOCKS_EXCLUDED(mu_);

  std::unique_ptr<boost::asio::io_context> ioc_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<WsSession>> ready_ ABSL_GUARDED_BY(mu_);
  // RunReady's own list, kept between runs so that neither list reallocates under load.
  std::vector<std::shared_ptr<WsSession>> running_;
  std::thread thread_;
};

}  // namespace bridge::ws

#endif  // BRIDGE_WS_LOOP_H_
