// Per-stage timestamps of replicated writes, for latency profiling
// (bench/README.md, "Where a write's time goes at concurrency 1"). Compiled
// in only with -DEES_STAGE_TRACE=ON; otherwise every call is an empty inline
// function and costs nothing.
//
// A stamp is one stderr line "stage <pid> <name> <index> <ns>" on
// CLOCK_MONOTONIC, which all processes of a machine share, for every 64th
// log index only, so that tracing hardly slows what it measures.
// bench/stage_trace.py lines up the stamps of the nodes' logs per index.
#pragma once

#include "protocol/raft/types.hpp"

#ifdef EES_STAGE_TRACE
#include <cstdio>
#include <ctime>
#include <unistd.h>
#endif

namespace ees::actors::stage_trace {

#ifdef EES_STAGE_TRACE
inline void stamp(const char* stage, log_index index) {
  if (index.value == 0 || index.value % 64 != 0)
    return;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  std::fprintf(stderr, "stage %d %s %llu %lld\n", static_cast<int>(getpid()),
               stage, static_cast<unsigned long long>(index.value),
               static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec);
}

/// Stamps an append (by its last entry) or an append acknowledgement (by
/// the index it acknowledges) entering (`in`) or leaving the node.
inline void message(bool in, const raft::message& m) {
  if (m.type == raft::message_type::append_request && !m.entries.empty())
    stamp(in ? "append_in" : "append_out", m.entries.back().index);
  else if (m.type == raft::message_type::append_response && !m.reject)
    stamp(in ? "ack_in" : "ack_out", m.index);
}
#else
inline void stamp(const char*, log_index) {}
inline void message(bool, const raft::message&) {}
#endif

} // namespace ees::actors::stage_trace
