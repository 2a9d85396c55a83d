"""Reading a closed Lab journal's frames, for the benchmarks that copy runs
by their journals (benches/million.py, the Lab driver of benches/peers).
The format is docs/journal-format.md's."""

from __future__ import annotations

import struct

SLOT_NS = 250_000_000  # a run id's first 32 bits: quarter seconds since 2025-01-01
EPOCH_SLOTS = 1_735_689_600 * 4
HEADER = b"LABJRNL\0" + struct.pack("<HHI", 1, 0, 0)


def _crc_table() -> list:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C, as docs/journal-format.md defines it."""
    crc, table = 0xFFFFFFFF, CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_frames(data: bytes) -> list:
    """The (payload, CRC) of every frame of a closed version 1 journal, each
    checked; a journal not closed or damaged is a ValueError."""
    if data[:8] != b"LABJRNL\0" or struct.unpack_from("<H", data, 8)[0] != 1:
        raise ValueError("not a version 1 Lab journal")
    frames = []
    off = 16
    while off < len(data):
        length, crc = struct.unpack_from("<II", data, off)
        if length == 0:
            raise ValueError(f"the journal was not closed (a zero length at byte {off})")
        payload = data[off + 8 : off + 8 + length]
        if len(payload) != length or crc32c(payload) != crc:
            raise ValueError(f"a damaged frame at byte {off}")
        frames.append((payload, crc))
        off += 8 + length
    return frames
