#include "storage/snapshot_file.hpp"

#include "storage/checksum.hpp"
#include "storage/codec.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <system_error>
#include <utility>

namespace ees::storage {

// -- file format --------------------------------------------------------------

namespace {

/// Everything of a snapshot file before the data.
std::string file_header(const raft::snapshot_meta& meta, std::size_t size) {
  auto encoded_meta = encode(meta);
  std::string out;
  out.reserve(1 + 4 + encoded_meta.size() + 8);
  put_u8(out, snapshot_file_version);
  put_u32(out, static_cast<std::uint32_t>(encoded_meta.size()));
  out += encoded_meta;
  put_u64(out, size);
  return out;
}

std::string file_trailer(std::uint32_t crc) {
  std::string out;
  put_u32(out, crc);
  return out;
}

storage_error corrupt(std::string why) {
  return storage_error{storage_errc::corruption,
                       "snapshot file: " + std::move(why)};
}

} // namespace

std::string encode_snapshot_file(const raft::snapshot_meta& meta,
                                 std::string_view data) {
  auto out = file_header(meta, data.size());
  out += data;
  out += file_trailer(crc32c(out));
  return out;
}

result<snapshot> decode_snapshot_file(std::string_view bytes) {
  byte_reader r{bytes};
  std::uint8_t version = 0;
  if (!r.u8(version))
    return corrupt("empty");
  if (version != snapshot_file_version)
    return storage_error{
      version > snapshot_file_version ? storage_errc::unsupported_version
                                      : storage_errc::corruption,
      "snapshot file: unknown format version " + std::to_string(version)};
  if (bytes.size() < 1 + 4)
    return corrupt("truncated");
  auto body = bytes.substr(0, bytes.size() - 4);
  std::uint32_t stored_crc = 0;
  byte_reader trailer{bytes.substr(bytes.size() - 4)};
  trailer.u32(stored_crc);
  if (crc32c(body) != stored_crc)
    return corrupt("checksum mismatch");
  r = byte_reader{body.substr(1)};
  std::uint32_t meta_size = 0;
  std::string_view meta_bytes;
  if (!r.u32(meta_size) || !r.bytes(meta_size, meta_bytes))
    return corrupt("truncated meta");
  auto meta = decode_snapshot_meta(meta_bytes);
  if (!meta)
    return meta.error();
  std::uint64_t data_size = 0;
  std::string_view data;
  if (!r.u64(data_size) || !r.bytes(data_size, data))
    return corrupt("truncated data");
  if (r.remaining() != 0)
    return corrupt("trailing bytes");
  return snapshot{std::move(*meta), std::string{data}};
}

// -- POSIX helpers ------------------------------------------------------------

namespace {

constexpr std::string_view snap_suffix = ".snap";
constexpr std::string_view tmp_suffix = ".snap.tmp";
constexpr std::size_t digits = 20;

storage_error os_error(const std::string& what, int err) {
  return storage_error{
    storage_errc::io_error,
    what + ": " + std::error_code{err, std::generic_category()}.message()};
}

/// Closes `fd` when it goes out of scope, unless released.
class fd_guard {
public:
  explicit fd_guard(int fd) noexcept : fd_(fd) {
    // nop
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int get() const noexcept {
    return fd_;
  }
  /// Closes now and reports close's errors, which may be delayed write
  /// errors (NFS, some FUSE file systems).
  int close() noexcept {
    auto fd = fd_;
    fd_ = -1;
    return ::close(fd);
  }

private:
  int fd_;
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

std::string file_name(log_index index, term_t term) {
  char buf[2 * digits + 2];
  std::snprintf(buf, sizeof(buf), "%020llu-%020llu",
                static_cast<unsigned long long>(index.value),
                static_cast<unsigned long long>(term.value));
  return std::string{buf} + std::string{snap_suffix};
}

std::optional<std::uint64_t> parse_digits(std::string_view s) {
  if (s.size() != digits)
    return std::nullopt;
  std::uint64_t x = 0;
  for (auto ch : s) {
    if (ch < '0' || ch > '9')
      return std::nullopt;
    auto d = static_cast<std::uint64_t>(ch - '0');
    if (x > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
      return std::nullopt;
    x = x * 10 + d;
  }
  return x;
}

/// Parses `<index>-<term>.snap`; nullopt for any other name.
std::optional<std::pair<log_index, term_t>> parse_name(std::string_view name) {
  if (name.size() != 2 * digits + 1 + snap_suffix.size() || name[digits] != '-'
      || !ends_with(name, snap_suffix))
    return std::nullopt;
  auto index = parse_digits(name.substr(0, digits));
  auto term = parse_digits(name.substr(digits + 1, digits));
  if (!index || !term)
    return std::nullopt;
  return std::pair{log_index{*index}, term_t{*term}};
}

/// Calls `f(name)` for every entry of `dir` except "." and "..".
/// @returns false when `dir` does not exist, true after listing it.
result<bool> for_each_entry(const std::string& dir,
                            const std::function<void(std::string_view)>& f) {
  auto* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT)
      return false;
    return os_error("cannot list " + dir, errno);
  }
  errno = 0;
  while (auto* ent = ::readdir(d)) {
    std::string_view name{ent->d_name};
    if (name != "." && name != "..")
      f(name);
  }
  auto err = errno;
  ::closedir(d);
  if (err != 0)
    return os_error("cannot list " + dir, err);
  return true;
}

status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    auto n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return os_error("cannot write " + path, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

status fsync_dir(const std::string& dir) {
  fd_guard fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (fd.get() < 0)
    return os_error("cannot open directory " + dir, errno);
  if (::fsync(fd.get()) != 0)
    return os_error("cannot fsync directory " + dir, errno);
  return {};
}

/// Creates `dir` if missing; a new entry is made durable by fsyncing the
/// parent, or a crash could lose the directory with the files inside.
status make_dir(const std::string& dir, const std::string& parent) {
  if (::mkdir(dir.c_str(), 0755) == 0)
    return fsync_dir(parent);
  if (errno == EEXIST)
    return {};
  return os_error("cannot create directory " + dir, errno);
}

result<std::string> read_file(const std::string& path) {
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0)
    return os_error("cannot open " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return os_error("cannot stat " + path, errno);
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    auto n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return os_error("cannot read " + path, errno);
    }
    if (n == 0) // Shrunk since fstat.
      break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

} // namespace

// -- snapshot_files -----------------------------------------------------------

snapshot_files::snapshot_files(std::string dir, std::size_t keep)
  : dir_(std::move(dir)), keep_(std::max<std::size_t>(keep, 1)) {
  // nop
}

std::string snapshot_files::group_dir(group_id group) const {
  return dir_ + "/snapshots/" + to_string(group);
}

status snapshot_files::save(group_id group, const raft::snapshot_meta& meta,
                            std::string_view data) {
  auto root = dir_ + "/snapshots";
  auto gdir = group_dir(group);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec)
    return storage_error{storage_errc::io_error,
                         "cannot create " + dir_ + ": " + ec.message()};
  if (auto st = make_dir(root, dir_); !st)
    return st;
  if (auto st = make_dir(gdir, root); !st)
    return st;
  auto final_path = gdir + "/" + file_name(meta.last_index, meta.last_term);
  auto tmp_path = final_path + ".tmp";
  auto write_tmp = [&]() -> status {
    fd_guard fd{
      ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (fd.get() < 0)
      return os_error("cannot create " + tmp_path, errno);
    // Written in three pieces so the data is never copied.
    auto header = file_header(meta, data.size());
    auto crc = crc32c(data, crc32c(header));
    if (auto st = write_all(fd.get(), header, tmp_path); !st)
      return st;
    if (auto st = write_all(fd.get(), data, tmp_path); !st)
      return st;
    if (auto st = write_all(fd.get(), file_trailer(crc), tmp_path); !st)
      return st;
    if (::fsync(fd.get()) != 0)
      return os_error("cannot fsync " + tmp_path, errno);
    if (fd.close() != 0)
      return os_error("cannot close " + tmp_path, errno);
    return {};
  };
  if (auto st = write_tmp(); !st) {
    ::unlink(tmp_path.c_str());
    return st;
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    auto err = os_error("cannot rename " + tmp_path, errno);
    ::unlink(tmp_path.c_str());
    return err;
  }
  if (auto st = fsync_dir(gdir); !st)
    return st;
  // Prune: keep the newest `keep_`, drop leftovers of interrupted saves.
  std::vector<std::pair<log_index, term_t>> found;
  std::vector<std::string> stale;
  auto listed = for_each_entry(gdir, [&](std::string_view name) {
    if (auto id = parse_name(name))
      found.push_back(*id);
    else if (ends_with(name, tmp_suffix))
      stale.emplace_back(name);
  });
  if (!listed)
    return {}; // The snapshot is saved; the next save prunes.
  std::sort(found.begin(), found.end(), std::greater<>{});
  for (std::size_t i = keep_; i < found.size(); ++i)
    stale.push_back(file_name(found[i].first, found[i].second));
  for (const auto& name : stale)
    ::unlink((gdir + "/" + name).c_str());
  return {};
}

result<std::vector<std::pair<log_index, term_t>>>
snapshot_files::list(group_id group) const {
  std::vector<std::pair<log_index, term_t>> found;
  auto listed = for_each_entry(group_dir(group), [&](std::string_view name) {
    if (auto id = parse_name(name))
      found.push_back(*id);
  });
  if (!listed)
    return listed.error();
  std::sort(found.begin(), found.end(), std::greater<>{});
  return found;
}

result<std::optional<snapshot>>
snapshot_files::load_latest(group_id group,
                            std::vector<storage_error>* skipped) const {
  auto found = list(group);
  if (!found)
    return found.error();
  auto gdir = group_dir(group);
  auto skip = [&](storage_error err) {
    if (skipped != nullptr)
      skipped->push_back(std::move(err));
  };
  for (const auto& [index, term] : *found) {
    auto path = gdir + "/" + file_name(index, term);
    auto bytes = read_file(path);
    if (!bytes) {
      skip(bytes.error());
      continue;
    }
    auto snap = decode_snapshot_file(*bytes);
    if (!snap) {
      auto err = snap.error();
      err.message = path + ": " + err.message;
      skip(std::move(err));
      continue;
    }
    if (snap->meta.last_index != index || snap->meta.last_term != term) {
      skip(corrupt(path + ": contents do not match the file name"));
      continue;
    }
    return std::optional<snapshot>{std::move(*snap)};
  }
  return std::optional<snapshot>{};
}

status snapshot_files::remove(group_id group) {
  auto gdir = group_dir(group);
  std::vector<std::string> names;
  auto listed = for_each_entry(
    gdir, [&](std::string_view name) { names.emplace_back(name); });
  if (!listed)
    return listed.error();
  if (!*listed)
    return {};
  for (const auto& name : names) {
    auto path = gdir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return os_error("cannot delete " + path, errno);
  }
  if (::rmdir(gdir.c_str()) != 0 && errno != ENOENT)
    return os_error("cannot delete directory " + gdir, errno);
  return fsync_dir(dir_ + "/snapshots");
}

} // namespace ees::storage
