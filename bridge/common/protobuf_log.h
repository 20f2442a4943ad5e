#ifndef BRIDGE_COMMON_PROTOBUF_LOG_H_
#define BRIDGE_COMMON_PROTOBUF_LOG_H_

namespace bridge {

// Sends libprotobuf's log lines (a message that does not parse, say) through the bridge
// log: the same format, and a rate limit of their own, so that a client sending garbage
// cannot flood stderr. Takes effect once; later calls do nothing.
void RouteProtobufLogs();

}  // namespace bridge

#endif  // BRIDGE_COMMON_PROTOBUF_LOG_H_
