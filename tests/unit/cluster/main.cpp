// Entry point of the ClusterStateMachine's unit tests (doctest supplies main).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
