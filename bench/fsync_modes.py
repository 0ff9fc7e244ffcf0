#!/usr/bin/env python3
"""fdatasync latency of small appends, by how the file was prepared.

Runs PROCS processes at once (three nodes of a local cluster share one
disk), each doing WRITES appends of 300 bytes, each followed by fdatasync,
to its own file in DIR, and prints p50/p99 per mode:

- append:    the file grows with every write (inode size changes: on ext4
             each fdatasync also commits the journal);
- keep-size: preallocated with FALLOC_FL_KEEP_SIZE (RocksDB's default for
             its WAL): the size still grows with every write;
- sized:     preallocated with its size set (log_store_options::sized_wal):
             writes land inside the file, no size change;
- overwrite: written (zeros) and synced beforehand.

  python3 bench/fsync_modes.py [DIR] [PROCS] [WRITES]   (default /tmp 3 1500)
"""
import multiprocessing
import os
import sys
import tempfile
import time

RECORD = b"x" * 300


def run(mode, path, writes, out):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        span = 4096 * (writes + 1)
        if mode == "overwrite":
            os.write(fd, b"\0" * span)
        elif mode == "sized":
            os.posix_fallocate(fd, 0, span)
        elif mode == "keep-size":
            # FALLOC_FL_KEEP_SIZE = 1; os.posix_fallocate cannot pass it.
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
            if libc.fallocate(fd, 1, 0, span) != 0:
                raise OSError(ctypes.get_errno(), "fallocate")
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        lat = []
        for _ in range(writes):
            t = time.perf_counter()
            os.write(fd, RECORD)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
        lat.sort()
        out.put((lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    procs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    writes = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    with tempfile.TemporaryDirectory(dir=base) as d:
        for mode in ("append", "keep-size", "sized", "overwrite"):
            out = multiprocessing.Queue()
            ps = [multiprocessing.Process(target=run, args=(mode, os.path.join(d, f"f{i}"), writes, out))
                  for i in range(procs)]
            for p in ps:
                p.start()
            res = [out.get(timeout=300) for _ in ps]
            for p in ps:
                p.join(timeout=60)
            p50 = sorted(r[0] for r in res)
            p99 = sorted(r[1] for r in res)
            print(f"{mode:10s} x{procs}: fdatasync p50 {p50[0] * 1e6:.0f}-{p50[-1] * 1e6:.0f} us, "
                  f"p99 {p99[0] * 1e6:.0f}-{p99[-1] * 1e6:.0f} us")


if __name__ == "__main__":
    main()
