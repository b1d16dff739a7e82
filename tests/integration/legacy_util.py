"""legacy_util.py - helpers of the legacy (port 5555) tests and bench/legacy.py: test images
(`fotactl image make`, and a Python builder of RTOS 1.x images that fotactl does not make,
following espressif-protocol.md section 5/6.2), the seed's ESP8266 client (stock_client) and
the extension client (stream_client), and a release published for the legacy listener.
The servers themselves start through the harness (fotatest.Fotad, fotatest.Dropin).
Python 3 stdlib only.
"""
import socket
import struct
import time
import zlib

import fotatest

CHUNK_MAX = 1280


# ------------------------------------------------------------------ images

def esp_crc(data):
    c = zlib.crc32(data) & 0xFFFFFFFF
    return (c ^ 0xFFFFFFFF) if c & 0x80000000 else c + 1


def py_image(slot, size, seed=1, size_map=2, rtos1=False):
    """A NONOS>=2.0 "new" image (EA 04 00 slot) of about `size` bytes with a valid checksum
    and CRC. rtos1: the RTOS 1.x gen_appbin header instead (EA 04 <mode> <map<<4|freq>, no
    slot number), what the seed's users flash."""
    def filler(n, s):
        out = bytearray(n)
        x = (s * 2654435761) & 0xFFFFFFFF
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
            out[i] = (x >> 16) & 0xFF
        return bytes(out)

    entry = 0x40100004
    segs = [(0x40100000, filler(2048, seed + 1)), (0x3FFE8000, filler(64, seed + 2)),
            (0x3FFE8040, filler(512, seed + 3))]
    e9_len = 8 + sum(8 + len(d) for _, d in segs)
    fixed = 16 + e9_len + 16 + 4          # headers, segments, worst-case padding+checksum, CRC
    irom_len = max(16, ((size - fixed) // 16) * 16)
    if rtos1:
        out = bytearray(struct.pack("<BBBBI", 0xEA, 4, 0, size_map << 4, entry))
    else:
        out = bytearray(struct.pack("<BBBBI", 0xEA, 4, 0, slot, entry))
    out += struct.pack("<II", 0, irom_len) + filler(irom_len, seed)
    out += struct.pack("<BBBBI", 0xE9, len(segs), 0, (size_map << 4) | 0, entry)
    xsum = 0xEF
    for addr, data in segs:
        out += struct.pack("<II", addr, len(data)) + data
        for b in data:
            xsum ^= b
    out += bytes((len(out) | 15) - len(out))
    out.append(xsum)
    out += struct.pack("<I", esp_crc(bytes(out)))
    return bytes(out)


def make_image(path, slot, size, version="v1.0", seed=1, flash_map=2):
    """Writes a NONOS >= 2.0 image for slot (built for size map flash_map) of at most size
    bytes to path, made by `fotactl image make` (distinct seeds make distinct images);
    returns its bytes."""
    data = fotatest.make_image(slot, flash_map, version, size, seed)
    with open(path, "wb") as f:
        f.write(data)
    return data


def publish(d, name, version, files, flash_map=2):
    """Creates product `name` on fotad d, uploads files {filename: bytes} as `version` and
    makes it current. Returns the product id."""
    pid = d.create_product(name, flash_map=flash_map)["id"]
    d.upload_release(pid, version, files=list(files.items()), flash_map=flash_map)
    d.set_current(pid, version)
    return pid


# ------------------------------------------------------------------ clients

class StockResult:
    def __init__(self):
        self.ok = False
        self.error = None
        self.data = b""
        self.length = None
        self.reads = 0
        self.first_read = None
        self.overflows = 0       # reads of more than one write that pacing cannot explain
        self.late_merges = 0     # reads of more than one write because the reader was late
        self.too_fast = False    # the whole image came in less time than its intervals take
        self.t_first = None
        self.t_last = None


def stock_client(port, section, host="127.0.0.1", timeout=30, stop_after=None, strict=False,
                 interval_ms=None):
    """Behaves like the seed's dfu_ota.c: sends one byte, needs the first receive to be
    exactly the 4-byte length, copies every later receive into a 1280-byte buffer, and hangs
    up once it has the whole image. It reads promptly with a generous buffer, so a read of
    more than one of the server's writes (the length, then chunks of at most 1280 bytes) is
    the server's burst, which overflows a device, or this reader's lateness. With the
    server's pacing interval_ms it tells them apart: k writes in one read are paced when at
    least (k - 1) intervals passed between the call of the previous recv (no later write was
    in the socket then) and the return of this one, however late the reader; those are
    counted as late_merges, the others as overflows (any merge, without interval_ms). A
    whole image of n writes that arrives in less than n - 1 intervals was not paced either
    (too_fast). strict: stop at the first overflow, as the device would, and fail a
    too_fast transfer. stop_after: hang up after that many image bytes."""
    def paced(k, since, now):
        # a 1 ms allowance per interval for libevent's coarse clock, 2 ms for this one's
        return (interval_ms is not None and
                now - since >= (k - 1) * max(interval_ms - 1, 0) / 1000.0 - 0.002)

    r = StockResult()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        t_call = t_request = time.monotonic()
        s.sendall(bytes([section]))
        buf = bytearray()
        while True:
            since, t_call = t_call, time.monotonic()
            chunk = s.recv(65536)
            now = time.monotonic()
            if not chunk:
                r.error = "server closed after %d of %s bytes" % (len(buf), r.length)
                break
            r.reads += 1
            first = r.length is None
            if first:
                r.first_read = len(chunk)
                writes = 1 + -(-(len(chunk) - 4) // CHUNK_MAX)
            else:
                writes = -(-len(chunk) // CHUNK_MAX)
            if writes > 1 and paced(writes, since, now):
                r.late_merges += 1
            elif writes > 1:
                r.overflows += 1
                if strict:
                    r.error = ("received length error (first read %d bytes)" % len(chunk) if first
                               else "receive of %d bytes overflows the 1280-byte buffer"
                               % len(chunk))
                    break
            if first:
                while len(chunk) < 4:
                    more = s.recv(4 - len(chunk))
                    if not more:
                        break
                    chunk += more
                if len(chunk) < 4:
                    r.error = "server closed inside the length"
                    break
                r.length = struct.unpack("<i", chunk[:4])[0]
                r.t_first = now
                if r.length < 0:
                    r.error = "firmware_length error"
                    break
                chunk = chunk[4:]
            if chunk:
                buf += chunk
                r.t_last = now
            if len(buf) > r.length:
                r.error = "received data size is not marched"
                break
            if stop_after is not None and len(buf) >= stop_after:
                r.error = "hung up on purpose"
                break
            if len(buf) == r.length:
                if interval_ms is not None:
                    r.too_fast = not paced(1 + -(-r.length // CHUNK_MAX), t_request, now)
                    if r.too_fast and strict:
                        r.error = "%d bytes in %.3f s: not paced by %d ms" % (
                            r.length, now - t_request, interval_ms)
                r.ok = r.error is None
                break
        r.data = bytes(buf)
    except OSError as e:
        r.error = "socket error: %s" % e
    finally:
        s.close()
    return r


def stream_client(port, section, host="127.0.0.1", timeout=30):
    """Extension client: request byte 0x80|section, reads length + image as fast as it can."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(bytes([0x80 | section]))
        head = b""
        while len(head) < 4:
            c = s.recv(4 - len(head))
            if not c:
                return None
            head += c
        n = struct.unpack("<I", head)[0]
        body = bytearray(n)
        view, got = memoryview(body), 0
        while got < n:
            k = s.recv_into(view[got:])
            if k == 0:
                return bytes(body[:got])
            got += k
        return bytes(body)
    finally:
        s.close()
