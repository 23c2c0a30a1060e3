"""A minimal winmail.dat (TNEF) writer for the tests: the structure MS-OXTNEF describes.

A stream is a signature, a key, then attributes: level (1 message, 2 attachment), id (16
bits), type (16 bits), length, data, and a checksum (the 16-bit sum of the data bytes). An
attachment starts with its rendering attribute, then its title (file name) and data.
"""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 1, 2
ATT_TNEF_VERSION, ATT_OEM_CODEPAGE = 0x9006, 0x9007
ATT_SUBJECT = 0x8004
ATT_RENDDATA, ATT_TITLE, ATT_DATA = 0x9002, 0x8010, 0x800F
TYPE_BYTE, TYPE_STRING, TYPE_DWORD = 0x0006, 0x0001, 0x0008


def _attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def build_tnef(files: list[tuple[str, bytes]], *, subject: str = "Report") -> bytes:
    out = struct.pack("<IH", SIGNATURE, 0x0001)
    out += _attribute(LVL_MESSAGE, ATT_TNEF_VERSION, TYPE_DWORD, struct.pack("<I", 0x00010000))
    out += _attribute(LVL_MESSAGE, ATT_OEM_CODEPAGE, TYPE_BYTE, struct.pack("<II", 1252, 0))
    out += _attribute(LVL_MESSAGE, ATT_SUBJECT, TYPE_STRING, subject.encode() + b"\x00")
    for name, data in files:
        out += _attribute(LVL_ATTACHMENT, ATT_RENDDATA, TYPE_BYTE, b"\x01\x00" + b"\x00" * 12)
        out += _attribute(LVL_ATTACHMENT, ATT_TITLE, TYPE_STRING, name.encode() + b"\x00")
        out += _attribute(LVL_ATTACHMENT, ATT_DATA, TYPE_BYTE, data)
    return out
