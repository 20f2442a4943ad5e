#ifndef BRIDGE_HUB_SINK_H_
#define BRIDGE_HUB_SINK_H_

namespace bridge::hub {

// The front end's side of one subscriber: a gRPC stream or a WebSocket session.
// The hub holds it by std::shared_ptr from Hub::Connect until Hub::Disconnect.
class Sink {
 public:
  virtual ~Sink() = default;

  // The subscriber has something to take: its queue went from empty to non-empty, or
  // the hub closed it. Called from any thread, never with a hub lock held. It must not
  // block: post the work to the front end's own thread and return. After OnReady the
  // front end calls Subscriber::Pop until it returns kEmpty (which re-arms OnReady) or
  // kClosed.
  virtual void OnReady() = 0;
};

}  // namespace bridge::hub

#endif  // BRIDGE_HUB_SINK_H_
