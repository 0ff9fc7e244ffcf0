// Node settings (DESIGN.md §6): every key from both file formats, overrides,
// defaults, and one test per validation error, each checking that the error
// names its key. Bad input must give errors, never a crash.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "ees/cluster/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace ees;
using namespace ees::cluster;

namespace fs = std::filesystem;

namespace {

/// A scratch directory, removed with everything in it at scope exit.
struct temp_dir {
  temp_dir() {
    path = fs::temp_directory_path()
           / ("ees-config-test-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto file = (path / name).string();
    std::ofstream out{file, std::ios::binary};
    out << text;
    return file;
  }
  fs::path path;
};

/// The smallest valid configuration.
const char* minimal = "ees.cluster.node-id=1\n"
                      "ees.cluster.listen=127.0.0.1:7101\n"
                      "ees.cluster.raft.data-dir=/tmp/ees\n";

/// A valid base with peers 2 and 3 and one group.
const char* base = "ees.cluster.node-id=1\n"
                   "ees.cluster.listen=127.0.0.1:7101\n"
                   "ees.cluster.peers[0]=2@127.0.0.1:7102\n"
                   "ees.cluster.peers[1]=3@127.0.0.1:7103\n"
                   "ees.cluster.raft.data-dir=/tmp/ees\n"
                   "ees.cluster.raft.groups[orders].peers[0]=1\n"
                   "ees.cluster.raft.groups[orders].peers[1]=2\n"
                   "ees.cluster.raft.groups[orders].peers[2]=3\n";

flat_config parse_ok(const std::string& text) {
  auto parsed = parse_properties(text, "test.properties");
  REQUIRE_MESSAGE(parsed, to_string(parsed.errors()));
  return std::move(*parsed);
}

/// Validates `base` with `overrides` applied.
result<node_settings> with(const std::vector<std::string>& overrides,
                           const char* text = base) {
  auto cfg = parse_ok(text);
  auto ov = parse_overrides(overrides);
  REQUIRE_MESSAGE(ov, to_string(ov.errors()));
  apply_overrides(cfg, *ov);
  return validate(cfg);
}

bool has_error(const std::vector<config_error>& errs, const std::string& key,
               const std::string& fragment) {
  return std::any_of(errs.begin(), errs.end(), [&](const config_error& e) {
    return e.key == key && e.message.find(fragment) != std::string::npos;
  });
}

/// Checks that `overrides` on top of `base` fail with an error on `key`
/// whose message contains `fragment`.
void expect_error(const std::vector<std::string>& overrides,
                  const std::string& key, const std::string& fragment,
                  const char* text = base) {
  auto res = with(overrides, text);
  INFO("overrides: " << (overrides.empty() ? "" : overrides.front()));
  REQUIRE_FALSE(res);
  INFO("errors:\n" << to_string(res.errors()));
  CHECK(has_error(res.errors(), key, fragment));
}

std::string example(const char* ext) {
  return std::string{EES_SOURCE_DIR} + "/apps/ees-node.example." + ext;
}

} // namespace

TEST_CASE("the example files load, validate and agree") {
  auto props = load_settings(example("properties"), {});
  REQUIRE_MESSAGE(props, to_string(props.errors()));
  auto yaml = load_settings(example("yaml"), {});
  REQUIRE_MESSAGE(yaml, to_string(yaml.errors()));
  CHECK(*props == *yaml);
  CHECK(props->id == node_id{1});
  CHECK(props->rack == "rack-a");
  CHECK(props->peers.size() == 3);
  REQUIRE(props->groups.size() == 2);
  CHECK(props->groups[0].app == "billing"); // sorted by app
  CHECK(props->groups[1].app == "orders");
  CHECK_FALSE(props->tls.enabled());
}

TEST_CASE("every key from a properties file") {
  temp_dir dir;
  auto crt = dir.write("node.crt", "x");
  auto key = dir.write("node.key", "x");
  auto ca = dir.write("ca.crt", "x");
  auto text = std::string{"ees.cluster.node-id=7\n"
                          "ees.cluster.rack=r1\n"
                          "ees.cluster.zone: z1\n"
                          "ees.cluster.listen=10.0.0.7:9000\n"
                          "ees.cluster.peers[0]=8@10.0.0.8:9000\n"
                          "ees.cluster.peers[1]=9@[::1]:9001\n"
                          "ees.cluster.raft.data-dir=/data/ees\n"
                          "ees.cluster.raft.groups[app-1].peers[0]=7\n"
                          "ees.cluster.raft.groups[app-1].peers[1]=8\n"
                          "ees.cluster.raft.groups[app-1].peers[2]=9\n"
                          "ees.cluster.raft.groups[b].peers=9,7\n"
                          "ees.cluster.raft.peer-count=5\n"
                          "ees.cluster.raft.heartbeat-ms=50\n"
                          "ees.cluster.raft.election-ms=500\n"
                          "ees.cluster.raft.rpc-timeout-ms=750\n"
                          "ees.cluster.scheduler.threads=3\n"
                          "ees.cluster.raft.direct-links=false\n"
                          "ees.cluster.raft.snapshot.threshold=123456\n"
                          "ees.cluster.raft.snapshot.store=kafka-ktable\n"
                          "ees.cluster.raft.snapshot.db.url=pg://db/ees\n"
                          "ees.cluster.raft.snapshot.kafka.bootstrap-servers="
                          "k1:9092,k2:9092\n"
                          "ees.cluster.raft.snapshot.kafka.topic=snaps\n"}
              + "ees.cluster.tls.certificate=" + crt + "\n"
              + "ees.cluster.tls.private-key=" + key + "\n"
              + "ees.cluster.tls.ca-file=" + ca + "\n";
  auto file = dir.write("node.properties", text);
  auto res = load_settings(file, {});
  REQUIRE_MESSAGE(res, to_string(res.errors()));
  const auto& s = *res;
  CHECK(s.id == node_id{7});
  CHECK(s.rack == "r1");
  CHECK(s.zone == "z1");
  CHECK(s.listen_host == "10.0.0.7");
  CHECK(s.listen_port == 9000);
  REQUIRE(s.peers.size() == 2);
  CHECK(s.peers[0] == peer_address{node_id{8}, "10.0.0.8", 9000});
  CHECK(s.peers[1] == peer_address{node_id{9}, "::1", 9001});
  CHECK(s.data_dir == "/data/ees");
  REQUIRE(s.groups.size() == 2);
  CHECK(s.groups[0].app == "app-1");
  CHECK(s.groups[0].peers
        == std::vector<node_id>{node_id{7}, node_id{8}, node_id{9}});
  CHECK(s.groups[1].app == "b");
  CHECK(s.groups[1].peers == std::vector<node_id>{node_id{9}, node_id{7}});
  CHECK(s.peer_count == 5);
  CHECK(s.heartbeat_ms == 50);
  CHECK(s.election_ms == 500);
  CHECK(s.rpc_timeout_ms == 750);
  CHECK(s.scheduler_threads == 3);
  CHECK_FALSE(s.direct_links);
  CHECK(s.snapshot_threshold == 123456);
  CHECK(s.snapshot_store == snapshot_store_kind::kafka_ktable);
  CHECK(s.snapshot_db_url == "pg://db/ees");
  CHECK(s.kafka_bootstrap == "k1:9092,k2:9092");
  CHECK(s.kafka_topic == "snaps");
  CHECK(s.tls.certificate == crt);
  CHECK(s.tls.private_key == key);
  CHECK(s.tls.ca_file == ca);
  CHECK(s.tls.enabled());

  SUBCASE("the same from a YAML file") {
    auto yaml = std::string{"ees:\n"
                            "  cluster:\n"
                            "    node-id: 7\n"
                            "    rack: r1\n"
                            "    zone: z1\n"
                            "    listen: 10.0.0.7:9000\n"
                            "    peers:\n"
                            "      - 8@10.0.0.8:9000\n"
                            "      - \"9@[::1]:9001\"\n"
                            "    scheduler: {threads: 3}\n"
                            "    raft:\n"
                            "      data-dir: /data/ees\n"
                            "      groups:\n"
                            "        app-1:\n"
                            "          peers: [7, 8, 9]\n"
                            "        b: {peers: [9, 7]}\n"
                            "      peer-count: 5\n"
                            "      heartbeat-ms: 50\n"
                            "      election-ms: 500\n"
                            "      rpc-timeout-ms: 750\n"
                            "      direct-links: false\n"
                            "      snapshot:\n"
                            "        threshold: 123456\n"
                            "        store: kafka-ktable\n"
                            "        db:\n"
                            "          url: pg://db/ees\n"
                            "        kafka:\n"
                            "          bootstrap-servers: k1:9092,k2:9092\n"
                            "          topic: snaps\n"
                            "    tls:\n"}
                + "      certificate: " + crt + "\n" + "      private-key: "
                + key + "\n" + "      ca-file: " + ca + "\n";
    auto yres = load_settings(dir.write("node.yaml", yaml), {});
    REQUIRE_MESSAGE(yres, to_string(yres.errors()));
    CHECK(*yres == s);
  }
  SUBCASE("and the same from the command line alone") {
    std::vector<std::string> args;
    auto flat = parse_ok(text);
    for (const auto& [k, e] : flat)
      args.push_back("--" + k + "=" + e.value);
    auto cres = load_settings(std::nullopt, args);
    REQUIRE_MESSAGE(cres, to_string(cres.errors()));
    CHECK(*cres == s);
  }
}

TEST_CASE("YAML: peers as a map, dotted keys, .yml and sources") {
  auto yaml = "ees.cluster.node-id: 1\n"
              "ees.cluster:\n"
              "  listen: 127.0.0.1:7101\n"
              "  peers:\n"
              "    3: 127.0.0.1:7103\n"
              "    2: 127.0.0.1:7102\n"
              "ees.cluster.raft.data-dir: /tmp/ees\n"
              "ees.cluster.raft.groups:\n"
              "  orders:\n"
              "    peers: 1,2,3\n";
  auto flat = parse_yaml(yaml, "n.yml");
  REQUIRE_MESSAGE(flat, to_string(flat.errors()));
  CHECK(flat->at("ees.cluster.peers.2").source == "n.yml:6");
  CHECK(flat->at("ees.cluster.raft.groups[orders].peers").value == "1,2,3");
  auto res = validate(*flat);
  REQUIRE_MESSAGE(res, to_string(res.errors()));
  REQUIRE(res->peers.size() == 2);
  CHECK(res->peers[0].id == node_id{2}); // map form: ordered by id
  CHECK(res->peers[1].id == node_id{3});
  CHECK(res->groups.at(0).peers.size() == 3);
  temp_dir dir;
  CHECK(load_settings(dir.write("n.yml", yaml), {}));
}

TEST_CASE("defaults") {
  auto res = with({}, minimal);
  REQUIRE_MESSAGE(res, to_string(res.errors()));
  node_settings expected;
  expected.id = node_id{1};
  expected.listen_host = "127.0.0.1";
  expected.listen_port = 7101;
  expected.data_dir = "/tmp/ees";
  CHECK(*res == expected);
  CHECK(res->rack == "default");
  CHECK(res->zone == "default");
  CHECK(res->peer_count == 3);
  CHECK(res->heartbeat_ms == 100);
  CHECK(res->election_ms == 1000);
  CHECK(res->rpc_timeout_ms == 1000);
  CHECK(res->scheduler_threads == 0);
  CHECK(res->direct_links);
  CHECK(res->snapshot_threshold == 10000);
  CHECK(res->snapshot_store == snapshot_store_kind::file);
  CHECK(res->peers.empty());
  CHECK(res->groups.empty());
  CHECK_FALSE(res->tls.enabled());
}

TEST_CASE("command-line overrides win over the file") {
  temp_dir dir;
  auto file = dir.write("n.properties", base);
  auto res = load_settings(file, {"ees.cluster.listen=127.0.0.1:7200",
                                  "--ees.cluster.raft.heartbeat-ms = 200",
                                  "ees.cluster.rack=r9"});
  REQUIRE_MESSAGE(res, to_string(res.errors()));
  CHECK(res->listen_port == 7200);
  CHECK(res->heartbeat_ms == 200);
  CHECK(res->rack == "r9");
  CHECK(res->data_dir == "/tmp/ees");

  SUBCASE("a list override replaces the whole indexed list") {
    auto r = load_settings(file, {"ees.cluster.peers=2@h2:1,3@h3:1,4@h4:1"});
    REQUIRE_MESSAGE(r, to_string(r.errors()));
    REQUIRE(r->peers.size() == 3);
    CHECK(r->peers[2] == peer_address{node_id{4}, "h4", 1});
  }
  SUBCASE("the last of repeated overrides wins") {
    auto r = load_settings(file, {"ees.cluster.zone=a", "ees.cluster.zone=b"});
    REQUIRE(r);
    CHECK(r->zone == "b");
  }
  SUBCASE("an override's error names the command line") {
    auto r = load_settings(file, {"ees.cluster.raft.peer-count=4"});
    REQUIRE_FALSE(r);
    REQUIRE(r.errors().size() == 1);
    CHECK(r.errors()[0].source == "command line");
  }
  SUBCASE("a malformed override") {
    auto r = load_settings(file, {"ees.cluster.node-id"});
    REQUIRE_FALSE(r);
    CHECK(has_error(r.errors(), "ees.cluster.node-id", "expected key=value"));
    r = load_settings(file, {"=3"});
    REQUIRE_FALSE(r);
    CHECK(has_error(r.errors(), "", "expected key=value"));
  }
}

TEST_CASE("the error text names key, problem and line") {
  auto cfg = parse_properties(std::string{minimal}
                                + "\n\n\n"
                                  "ees.cluster.raft.peer-count=4\n",
                              "config.properties");
  REQUIRE(cfg);
  auto res = validate(*cfg);
  REQUIRE_FALSE(res);
  REQUIRE(res.errors().size() == 1);
  CHECK(to_string(res.errors()[0])
        == "ees.cluster.raft.peer-count: must be 3 or 5, got 4 "
           "(config.properties:7)");
}

TEST_CASE("required keys") {
  auto res = validate(flat_config{});
  REQUIRE_FALSE(res);
  CHECK(res.errors().size() == 3); // all reported together
  CHECK(has_error(res.errors(), "ees.cluster.node-id", "required"));
  CHECK(has_error(res.errors(), "ees.cluster.listen", "required"));
  CHECK(has_error(res.errors(), "ees.cluster.raft.data-dir", "required"));
}

TEST_CASE("every bad value is an error naming its key") {
  // node-id
  expect_error({"ees.cluster.node-id=0"}, "ees.cluster.node-id",
               "must be an integer >= 1, got 0");
  expect_error({"ees.cluster.node-id=-1"}, "ees.cluster.node-id", "'-1'");
  expect_error({"ees.cluster.node-id=abc"}, "ees.cluster.node-id", "'abc'");
  expect_error({"ees.cluster.node-id=99999999999999999999"},
               "ees.cluster.node-id", "must be an integer");
  // rack, zone, data-dir
  expect_error({"ees.cluster.rack="}, "ees.cluster.rack", "must not be empty");
  expect_error({"ees.cluster.zone= "}, "ees.cluster.zone", "must not be empty");
  expect_error({"ees.cluster.raft.data-dir="}, "ees.cluster.raft.data-dir",
               "must not be empty");
  // listen
  expect_error({"ees.cluster.listen=localhost"}, "ees.cluster.listen",
               "must be host:port");
  expect_error({"ees.cluster.listen=localhost:0"}, "ees.cluster.listen",
               "port must be between 1 and 65535, got 0");
  expect_error({"ees.cluster.listen=localhost:65536"}, "ees.cluster.listen",
               "got 65536");
  expect_error({"ees.cluster.listen=localhost:http"}, "ees.cluster.listen",
               "'http'");
  expect_error({"ees.cluster.listen=:7000"}, "ees.cluster.listen",
               "must be host:port");
  expect_error({"ees.cluster.listen=::1:7000"}, "ees.cluster.listen",
               "in brackets");
  expect_error({"ees.cluster.listen=[::1:7000"}, "ees.cluster.listen",
               "[ipv6]:port");
  expect_error({"ees.cluster.listen=a b:7000"}, "ees.cluster.listen",
               "must be host:port");
  // raft numbers
  expect_error({"ees.cluster.raft.peer-count=4"}, "ees.cluster.raft.peer-count",
               "must be 3 or 5, got 4");
  expect_error({"ees.cluster.raft.peer-count=three"},
               "ees.cluster.raft.peer-count", "'three'");
  expect_error({"ees.cluster.raft.heartbeat-ms=9"},
               "ees.cluster.raft.heartbeat-ms", "between 10 and 10000, got 9");
  expect_error({"ees.cluster.raft.heartbeat-ms=10001"},
               "ees.cluster.raft.heartbeat-ms", "got 10001");
  expect_error(
    {"ees.cluster.raft.election-ms=299", "ees.cluster.raft.heartbeat-ms=100"},
    "ees.cluster.raft.election-ms",
    "at least 3 x ees.cluster.raft.heartbeat-ms (300), got 299");
  expect_error({"ees.cluster.raft.heartbeat-ms=500"},
               "ees.cluster.raft.election-ms", "got 1000 (the default)");
  expect_error({"ees.cluster.raft.election-ms=60001"},
               "ees.cluster.raft.election-ms", "got 60001");
  expect_error({"ees.cluster.raft.rpc-timeout-ms=5"},
               "ees.cluster.raft.rpc-timeout-ms", "between 10 and 60000");
  expect_error({"ees.cluster.raft.rpc-timeout-ms=1s"},
               "ees.cluster.raft.rpc-timeout-ms", "'1s'");
  expect_error({"ees.cluster.scheduler.threads=257"},
               "ees.cluster.scheduler.threads", "between 0 and 256");
  expect_error({"ees.cluster.raft.direct-links=yes"},
               "ees.cluster.raft.direct-links", "true or false, got 'yes'");
  expect_error({"ees.cluster.raft.snapshot.threshold=0"},
               "ees.cluster.raft.snapshot.threshold", ">= 1, got 0");
  // snapshot store
  expect_error({"ees.cluster.raft.snapshot.store=s3"},
               "ees.cluster.raft.snapshot.store",
               "must be file, db or kafka-ktable, got 's3'");
  expect_error({"ees.cluster.raft.snapshot.store=db"},
               "ees.cluster.raft.snapshot.db.url",
               "required when ees.cluster.raft.snapshot.store is db");
  expect_error(
    {"ees.cluster.raft.snapshot.store=db", "ees.cluster.raft.snapshot.db.url="},
    "ees.cluster.raft.snapshot.db.url", "must not be empty");
  expect_error({"ees.cluster.raft.snapshot.store=kafka-ktable"},
               "ees.cluster.raft.snapshot.kafka.bootstrap-servers",
               "required when");
  expect_error({"ees.cluster.raft.snapshot.store=kafka-ktable"},
               "ees.cluster.raft.snapshot.kafka.topic", "required when");
  expect_error({"ees.cluster.raft.snapshot.kafka.bootstrap-servers=k1:9092,k2"},
               "ees.cluster.raft.snapshot.kafka.bootstrap-servers", "'k2'");
  expect_error({"ees.cluster.raft.snapshot.kafka.topic=a/b"},
               "ees.cluster.raft.snapshot.kafka.topic", "'a/b'");
}

TEST_CASE("peers") {
  SUBCASE("listing this node with its own address is fine") {
    auto res = with({"ees.cluster.peers[2]=1@127.0.0.1:7101"});
    REQUIRE_MESSAGE(res, to_string(res.errors()));
    CHECK(res->peers.size() == 3);
  }
  SUBCASE("a wildcard listen host matches any host of this node") {
    auto res = with({"ees.cluster.listen=0.0.0.0:7101",
                     "ees.cluster.peers[2]=1@10.1.1.1:7101"});
    REQUIRE_MESSAGE(res, to_string(res.errors()));
  }
  SUBCASE("this node with another address") {
    expect_error({"ees.cluster.peers[2]=1@127.0.0.1:7999"},
                 "ees.cluster.peers[2]",
                 "is this node (ees.cluster.node-id), but its address "
                 "127.0.0.1:7999 differs from ees.cluster.listen "
                 "127.0.0.1:7101");
  }
  SUBCASE("another node on this node's address") {
    expect_error({"ees.cluster.peers[2]=4@127.0.0.1:7101"},
                 "ees.cluster.peers[2]", "is this node's ees.cluster.listen");
  }
  SUBCASE("duplicate id and duplicate address") {
    expect_error({"ees.cluster.peers[2]=2@127.0.0.1:7999"},
                 "ees.cluster.peers[2]",
                 "node 2 is listed twice (also at ees.cluster.peers[0])");
    expect_error({"ees.cluster.peers[2]=4@127.0.0.1:7102"},
                 "ees.cluster.peers[2]",
                 "address 127.0.0.1:7102 is also used by node 2");
  }
  SUBCASE("malformed entries") {
    expect_error({"ees.cluster.peers[2]=127.0.0.1:7104"},
                 "ees.cluster.peers[2]", "must be id@host:port");
    expect_error({"ees.cluster.peers[2]=x@127.0.0.1:7104"},
                 "ees.cluster.peers[2]", "numeric id");
    expect_error({"ees.cluster.peers[2]=0@127.0.0.1:7104"},
                 "ees.cluster.peers[2]", "node id must be > 0");
    expect_error({"ees.cluster.peers[2]=4@127.0.0.1:0"}, "ees.cluster.peers[2]",
                 "port must be between 1 and 65535");
    expect_error({"ees.cluster.peers[x]=4@h:1"}, "ees.cluster.peers[x]",
                 "expected ees.cluster.peers[N]");
    expect_error({"ees.cluster.peers=4@h:1,,5@h:2"}, "ees.cluster.peers",
                 "item 2 of the list is empty", minimal);
    expect_error({"ees.cluster.peers.0=h:1"}, "ees.cluster.peers.0",
                 "node id must be > 0", minimal);
  }
  SUBCASE("a list given in two forms") {
    expect_error({"ees.cluster.peers[5]=4@h:1"}, "ees.cluster.peers",
                 "set both as a list and as ees.cluster.peers[N]",
                 "ees.cluster.node-id=1\n"
                 "ees.cluster.listen=127.0.0.1:7101\n"
                 "ees.cluster.raft.data-dir=/tmp/ees\n"
                 "ees.cluster.peers=2@h:2\n");
  }
  SUBCASE("indices order numerically, gaps allowed") {
    auto res
      = with({"ees.cluster.peers[10]=4@h:4", "ees.cluster.peers[9]=5@h:5",
              "ees.cluster.peers[0]=2@h:2"},
             minimal);
    REQUIRE_MESSAGE(res, to_string(res.errors()));
    REQUIRE(res->peers.size() == 3);
    CHECK(res->peers[0].id == node_id{2});
    CHECK(res->peers[1].id == node_id{5});
    CHECK(res->peers[2].id == node_id{4});
  }
}

TEST_CASE("groups") {
  const std::string key = "ees.cluster.raft.groups[orders].peers";
  expect_error({key + "[3]=9"}, key + "[3]",
               "node 9 is neither this node (ees.cluster.node-id) nor in "
               "ees.cluster.peers");
  expect_error({key + "[3]=2"}, key + "[3]",
               "node 2 is listed twice in group 'orders'");
  expect_error({key + "[3]=0"}, key + "[3]",
               "must be a node id (an integer >= 1), got 0");
  expect_error({key + "[3]=two"}, key + "[3]", "'two'");
  expect_error({key + "[0]=1", key + "[1]=2", key + "[2]=3", key + "[3]=4",
                key + "[4]=5", key + "[5]=6", key + "[6]=7", key + "[7]=8",
                "ees.cluster.peers=2@h:2,3@h:3,4@h:4,5@h:5,6@h:6,7@h:7,8@h:8"},
               key, "must list 1 to 7 node ids, got 8", minimal);
  expect_error({key + "="}, key, "must list 1 to 7 node ids, got 0", minimal);
  expect_error({"ees.cluster.raft.groups[a b].peers=1"},
               "ees.cluster.raft.groups[a b].peers", "application name must be",
               minimal);
  expect_error({"ees.cluster.raft.groups[].peers=1"},
               "ees.cluster.raft.groups[].peers", "application name must be",
               minimal);
  expect_error({}, key,
               "set both as a list and as "
               "ees.cluster.raft.groups[app].peers[i]",
               "ees.cluster.node-id=1\n"
               "ees.cluster.listen=127.0.0.1:7101\n"
               "ees.cluster.raft.data-dir=/tmp/ees\n"
               "ees.cluster.raft.groups[orders].peers=1\n"
               "ees.cluster.raft.groups[orders].peers[0]=1\n");

  SUBCASE("seven peers are fine") {
    auto res = with({key + "=1,2,3,4,5,6,7",
                     "ees.cluster.peers=2@h:2,3@h:3,4@h:4,5@h:5,6@h:6,7@h:7"},
                    minimal);
    REQUIRE_MESSAGE(res, to_string(res.errors()));
    CHECK(res->groups.at(0).peers.size() == 7);
  }
  SUBCASE("unknown ids are not reported when the peer list is broken") {
    auto res = with({"ees.cluster.peers[1]=bad"});
    REQUIRE_FALSE(res);
    CHECK(res.errors().size() == 1);
  }
}

TEST_CASE("TLS: all three existing files or none") {
  temp_dir dir;
  auto crt = dir.write("node.crt", "x");
  auto key = dir.write("node.key", "x");
  auto ca = dir.write("ca.crt", "x");
  auto res = with({"ees.cluster.tls.certificate=" + crt,
                   "ees.cluster.tls.private-key=" + key,
                   "ees.cluster.tls.ca-file=" + ca});
  REQUIRE_MESSAGE(res, to_string(res.errors()));
  CHECK(res->tls.enabled());

  res = with({"ees.cluster.tls.certificate=" + crt});
  REQUIRE_FALSE(res);
  CHECK(res.errors().size() == 2);
  CHECK(has_error(res.errors(), "ees.cluster.tls.private-key",
                  "is required because ees.cluster.tls.certificate is set"));
  CHECK(has_error(res.errors(), "ees.cluster.tls.ca-file", "is required"));

  expect_error({"ees.cluster.tls.certificate=" + crt,
                "ees.cluster.tls.private-key=" + key + ".missing",
                "ees.cluster.tls.ca-file=" + ca},
               "ees.cluster.tls.private-key", "file not found");
  expect_error({"ees.cluster.tls.certificate=" + crt,
                "ees.cluster.tls.private-key=" + key,
                "ees.cluster.tls.ca-file=" + dir.path.string()},
               "ees.cluster.tls.ca-file", "is not a regular file");
  expect_error({"ees.cluster.tls.certificate=" + crt,
                "ees.cluster.tls.private-key=" + key,
                "ees.cluster.tls.ca-file="},
               "ees.cluster.tls.ca-file", "must not be empty");
}

TEST_CASE("unknown keys, with a suggestion when one is close") {
  auto check = [](const std::string& key, const std::string& message) {
    auto res = with({key + "=1"});
    REQUIRE_FALSE(res);
    INFO(to_string(res.errors()));
    CHECK(has_error(res.errors(), key, message));
  };
  check("ees.cluster.raft.hearbeat-ms",
        "unknown key; did you mean 'ees.cluster.raft.heartbeat-ms'?");
  check("ees.cluster.raft.heartbeat",
        "did you mean 'ees.cluster.raft.heartbeat-ms'?");
  check("ees.cluster.nodeId", "did you mean 'ees.cluster.node-id'?");
  check("ees.cluster.raft.peer_count",
        "did you mean 'ees.cluster.raft.peer-count'?");
  check("ees.cluster.data-dir", "did you mean 'ees.cluster.raft.data-dir'?");
  check("ees.cluster.raft.snapshot.treshold",
        "did you mean 'ees.cluster.raft.snapshot.threshold'?");
  check("ees.cluster.peer[4]", "did you mean 'ees.cluster.peers[4]'?");
  check("ees.cluster.raft.group[orders].peers[3]",
        "did you mean 'ees.cluster.raft.groups[orders].peers[3]'?");
  check("ees.cluster.raft.groups[orders].peer[3]",
        "did you mean 'ees.cluster.raft.groups[orders].peers[3]'?");
  check("ees.cluster.tls.key", "did you mean 'ees.cluster.tls.private-key'?");
  check("ees.cluster.tls.cert", "did you mean 'ees.cluster.tls.certificate'?");
  check("ees.cluster.raft.timeout",
        "did you mean 'ees.cluster.raft.rpc-timeout-ms'?");
  check("EES.CLUSTER.LISTEN", "did you mean 'ees.cluster.listen'?");
  check("ees.cluster.scheduler.thread",
        "did you mean 'ees.cluster.scheduler.threads'?");
  auto res = with({"something.else.entirely=1"});
  REQUIRE_FALSE(res);
  REQUIRE(res.errors().size() == 1);
  CHECK(res.errors()[0].key == "something.else.entirely");
  CHECK(res.errors()[0].message == "unknown key");
  CHECK(res.errors()[0].source == "command line");
}

TEST_CASE("properties syntax") {
  SUBCASE("comments, separators, whitespace, escapes, continuations") {
    auto flat = parse_ok("\xEF\xBB\xBF# comment\r\n"
                         "  ! another comment\n"
                         "\n"
                         "a=1\r\n"
                         "b : 2   \n"
                         "  c=  three words \t\n"
                         "d\\=x=\\u00e9\\t\\\\\n"
                         "e=one, \\\n"
                         "    two\n"
                         "f=\n"
                         "g:h:i\n");
    CHECK(flat.at("a").value == "1");
    CHECK(flat.at("a").source == "test.properties:4");
    CHECK(flat.at("b").value == "2");
    CHECK(flat.at("c").value == "three words");
    CHECK(flat.at("d=x").value == "\xC3\xA9\t\\");
    CHECK(flat.at("e").value == "one, two");
    CHECK(flat.at("e").source == "test.properties:8");
    CHECK(flat.at("f").value.empty());
    CHECK(flat.at("g").value == "h:i");
    CHECK(flat.at("g").source == "test.properties:11");
  }
  SUBCASE("malformed lines are errors with their line, all of them") {
    auto res = parse_properties("ok=1\n"
                                "justakey\n"
                                "=value\n"
                                "key value\n"
                                "bad=\\u12\n"
                                "ok2=2\n",
                                "m.properties");
    REQUIRE_FALSE(res);
    const auto& errs = res.errors();
    REQUIRE(errs.size() == 4);
    CHECK(errs[0].key == "justakey");
    CHECK(errs[0].source == "m.properties:2");
    CHECK(errs[0].message.find("malformed line") != std::string::npos);
    CHECK(errs[1].source == "m.properties:3");
    CHECK(errs[1].message.find("missing key") != std::string::npos);
    CHECK(errs[2].key == "key");
    CHECK(errs[2].source == "m.properties:4");
    CHECK(errs[3].key == "bad");
    CHECK(errs[3].message.find("\\uXXXX") != std::string::npos);
  }
  SUBCASE("a key set twice names both lines") {
    auto res = parse_properties("a=1\nb=2\na=3\n", "d.properties");
    REQUIRE_FALSE(res);
    REQUIRE(res.errors().size() == 1);
    CHECK(res.errors()[0].key == "a");
    CHECK(res.errors()[0].source == "d.properties:3");
    CHECK(res.errors()[0].message == "set twice; first at d.properties:1");
  }
}

TEST_CASE("YAML errors are errors, not crashes") {
  SUBCASE("syntax error with its line") {
    auto res = parse_yaml("ees:\n  cluster:\n    node-id: [1, 2\n", "s.yaml");
    REQUIRE_FALSE(res);
    REQUIRE(res.errors().size() == 1);
    CHECK(res.errors()[0].message.find("YAML") == 0);
    CHECK(res.errors()[0].source.find("s.yaml:") == 0);
  }
  SUBCASE("bad indentation") {
    auto res = parse_yaml("a:\n  b: 1\n c: 2\n", "s.yaml");
    REQUIRE_FALSE(res);
  }
  SUBCASE("top level is not a map") {
    auto res = parse_yaml("- a\n- b\n", "s.yaml");
    REQUIRE_FALSE(res);
    CHECK(res.errors()[0].message == "the top level must be a map of keys");
    res = parse_yaml("just a scalar", "s.yaml");
    REQUIRE_FALSE(res);
  }
  SUBCASE("non-scalar map key") {
    auto res = parse_yaml("? [a, b]\n: 1\n", "s.yaml");
    REQUIRE_FALSE(res);
    CHECK(res.errors()[0].message == "map keys must be non-empty scalars");
  }
  SUBCASE("a key set twice, nested and dotted") {
    auto res = parse_yaml("ees:\n"
                          "  cluster:\n"
                          "    node-id: 1\n"
                          "ees.cluster.node-id: 2\n",
                          "s.yaml");
    REQUIRE_FALSE(res);
    REQUIRE(res.errors().size() == 1);
    CHECK(res.errors()[0].key == "ees.cluster.node-id");
    CHECK(res.errors()[0].message == "set twice; first at s.yaml:3");
    CHECK(res.errors()[0].source == "s.yaml:4");
  }
  SUBCASE("empty documents and nulls") {
    auto res = parse_yaml("", "s.yaml");
    REQUIRE(res);
    CHECK(res->empty());
    res = parse_yaml("a:\nb: ~\nc: []\n", "s.yaml");
    REQUIRE(res);
    CHECK(res->at("a").value.empty());
    CHECK(res->at("b").value.empty());
    CHECK(res->at("c").value.empty());
  }
  SUBCASE("deep nesting") {
    for (int n : {100, 100000}) {
      auto deep = std::string(n, '[') + std::string(n, ']');
      auto res = parse_yaml("a: " + deep, "s.yaml");
      REQUIRE_FALSE(res);
    }
  }
  SUBCASE("garbage") {
    auto res = parse_yaml("\x01\x02\xff: : : {[}]", "s.yaml");
    CHECK_FALSE(res);
  }
}

TEST_CASE("files") {
  temp_dir dir;
  auto res = load_settings((dir.path / "nope.properties").string(), {});
  REQUIRE_FALSE(res);
  CHECK(res.errors()[0].message == "configuration file not found");
  res = load_settings(dir.write("n.toml", "a=1"), {});
  REQUIRE_FALSE(res);
  CHECK(res.errors()[0].message.find("expected .properties, .yaml or .yml")
        != std::string::npos);
  auto yaml_dir = dir.path / "d.yaml";
  fs::create_directories(yaml_dir);
  res = load_settings(yaml_dir.string(), {});
  REQUIRE_FALSE(res);
  CHECK(res.errors()[0].message == "configuration file is not a regular file");
  SUBCASE("parse errors of file and overrides come together") {
    res = load_settings(dir.write("bad.properties", "oops\n"), {"also-oops"});
    REQUIRE_FALSE(res);
    CHECK(res.errors().size() == 2);
  }
}

TEST_CASE("multiple errors are reported together") {
  auto res
    = with({"ees.cluster.node-id=0", "ees.cluster.listen=nohost",
            "ees.cluster.raft.peer-count=4", "ees.cluster.raft.heartbeat-ms=1",
            "ees.cluster.bogus=1", "ees.cluster.raft.snapshot.store=db"});
  REQUIRE_FALSE(res);
  const auto& errs = res.errors();
  INFO(to_string(errs));
  CHECK(errs.size() == 6);
  CHECK(has_error(errs, "ees.cluster.node-id", "got 0"));
  CHECK(has_error(errs, "ees.cluster.listen", "host:port"));
  CHECK(has_error(errs, "ees.cluster.raft.peer-count", "got 4"));
  CHECK(has_error(errs, "ees.cluster.raft.heartbeat-ms", "got 1"));
  CHECK(has_error(errs, "ees.cluster.bogus", "unknown key"));
  CHECK(has_error(errs, "ees.cluster.raft.snapshot.db.url", "required"));
}

TEST_CASE("to_properties round-trips through the parser") {
  temp_dir dir;
  node_settings x;
  x.id = node_id{42};
  x.rack = "rack #1";
  x.zone = "zone=a:b";
  x.listen_host = "::1";
  x.listen_port = 65535;
  x.peers = {{node_id{3}, "host-3", 1},
             {node_id{42}, "::1", 65535},
             {node_id{5}, "10.0.0.5", 7000}};
  x.data_dir = " C:\\ees data\\\xC3\xA9\t! ";
  x.groups = {{"a.b_c-d", {node_id{42}, node_id{3}}}, {"z", {node_id{5}}}};
  x.peer_count = 5;
  x.heartbeat_ms = 10;
  x.election_ms = 30;
  x.rpc_timeout_ms = 60000;
  x.scheduler_threads = 256;
  x.direct_links = false;
  x.snapshot_threshold = 18446744073709551615ull;
  x.snapshot_store = snapshot_store_kind::db;
  x.snapshot_db_url = "postgresql://u:p@db:5432/ees?ssl=true#x";
  x.kafka_bootstrap = "k:1";
  x.kafka_topic = "t";
  x.tls = {dir.write("c", ""), dir.write("k", ""), dir.write("a", "")};
  auto text = to_properties(x);
  INFO(text);
  auto flat = parse_properties(text, "rt.properties");
  REQUIRE_MESSAGE(flat, to_string(flat.errors()));
  auto y = validate(*flat);
  REQUIRE_MESSAGE(y, to_string(y.errors()));
  CHECK(*y == x);
  CHECK(to_properties(*y) == text);

  SUBCASE("and the defaults") {
    auto d = with({}, minimal);
    REQUIRE(d);
    auto again = validate(parse_ok(to_properties(*d)));
    REQUIRE(again);
    CHECK(*again == *d);
  }
  SUBCASE("and the examples") {
    auto e = load_settings(example("yaml"), {});
    REQUIRE(e);
    auto again = validate(parse_ok(to_properties(*e)));
    REQUIRE(again);
    CHECK(*again == *e);
  }
}

TEST_CASE("result") {
  result<int> ok{3};
  CHECK(ok.has_value());
  CHECK(*ok == 3);
  CHECK(ok.errors().empty());
  result<int> bad{std::vector<config_error>{{"k", "m", "s"}}};
  CHECK_FALSE(bad);
  CHECK(to_string(bad.errors()) == "k: m (s)\n");
  CHECK(to_string(config_error{"", "m", ""}) == "m");
  CHECK(to_string(config_error{"k", "m", ""}) == "k: m");
  CHECK(to_string(snapshot_store_kind::kafka_ktable)
        == std::string{"kafka-ktable"});
}
