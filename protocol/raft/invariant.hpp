// Tier-1 errors of the style rules: a broken invariant aborts with context.
#pragma once

#include <cstdio>
#include <cstdlib>

/// Aborts with `file:line`, the failed condition and a formatted explanation
/// when `cond` is false. For states that are impossible unless the code or the
/// storage beneath it is broken; never for bad input.
#define EES_ASSERT(cond, ...)                                           \
  do {                                                                  \
    if (!(cond)) {                                                      \
      std::fprintf(stderr, "%s:%d: invariant violated: %s: ", __FILE__, \
                   __LINE__, #cond);                                    \
      std::fprintf(stderr, __VA_ARGS__);                                \
      std::fputc('\n', stderr);                                         \
      std::abort();                                                     \
    }                                                                   \
  } while (false)
