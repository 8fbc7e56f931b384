#!/usr/bin/env python3
"""Writes the ELF fixtures for tests/loader: a minimal valid hand-made static executable
(good-*.elf) and, derived from it, one deliberately broken file per check the loader makes
(bad-*.elf). The expected error for each bad file lives in tests/loader/test_elf_check.c.

Deterministic: rerun after changing it and commit the outputs.
    python3 tests/data/elf/make-bad-elfs.py [outdir]
"""
import os
import random
import struct
import sys

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr, 64 bytes
PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr, 56 bytes

PT_LOAD, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 1, 3, 4, 6, 7
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183

# exit(42): mov $60,%eax; mov $42,%edi; syscall
CODE = bytes.fromhex("b83c000000bf2a0000000f05")
DATA = b"loader test data"


def ident(cls=2, data=1, version=1):
    return b"\x7fELF" + bytes([cls, data, version, 0]) + bytes(8)


class Elf:
    """A small mutable model: edit the fields, then build() lays the file out."""

    def __init__(self, base=0x400000, etype=ET_EXEC):
        self.ident = ident()
        self.type = etype
        self.machine = EM_X86_64
        self.version = 1
        self.entry = base + 0x1000
        self.phoff = 64
        self.phentsize = PHDR.size
        self.phnum = None  # None: len(phdrs)
        self.shoff = 0
        self.shnum = 0
        # [type, flags, offset, vaddr, paddr, filesz, memsz, align]
        self.phdrs = [
            [PT_LOAD, PF_R | PF_X, 0, base, base, 0x1000 + len(CODE), 0x1000 + len(CODE), 0x1000],
            [PT_LOAD, PF_R | PF_W, 0x2000, base + 0x2000, base + 0x2000, len(DATA), 0x3000, 0x1000],
            [PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 0, 16],
        ]
        self.size = 0x2000 + len(DATA)
        self.patches = []  # (offset, bytes) written last

    def build(self):
        out = bytearray(self.size)
        phnum = len(self.phdrs) if self.phnum is None else self.phnum
        out[0:64] = EHDR.pack(self.ident, self.type, self.machine, self.version, self.entry,
                              self.phoff, self.shoff, 0, 64, self.phentsize, phnum, 64,
                              self.shnum, 0)
        for i, ph in enumerate(self.phdrs):
            off = self.phoff + i * PHDR.size
            if off + PHDR.size <= len(out):
                out[off:off + PHDR.size] = PHDR.pack(*ph)
        out[0x1000:0x1000 + len(CODE)] = CODE
        out[0x2000:0x2000 + len(DATA)] = DATA
        for off, b in self.patches:
            out[off:off + len(b)] = b
        return bytes(out)


def pie():
    e = Elf(base=0, etype=ET_DYN)
    e.phdrs.insert(0, [PT_PHDR, PF_R, 64, 64, 64, 4 * PHDR.size, 4 * PHDR.size, 8])
    e.phdrs[1][7] = e.phdrs[2][7] = 0x200000
    return e


def shared_page():
    # Data starts in the page where text ends, as `ld -z noseparate-code` lays files out:
    # Linux allows it, and the loader gives the page both segments' rights.
    e = Elf()
    e.phdrs[0][5] = e.phdrs[0][6] = 0x2008
    e.phdrs[1][2] = 0x2010
    e.phdrs[1][3] = e.phdrs[1][4] = 0x402010
    e.patches.append((0x2010, DATA))
    e.size = 0x2010 + len(DATA)
    return e


def mutate(fn, base=None):
    e = base() if base else Elf()
    fn(e)
    return e.build()


def many_loads(e):
    e.phdrs = [e.phdrs[0]] + [
        [PT_LOAD, PF_R, 0x2000, 0x500000 + i * 0x1000, 0, 16, 16, 0x1000] for i in range(16)
    ]
    e.phoff = 0x100
    e.patches.append((0x1000, CODE))


def interp(path, where=0x800):
    def fn(e):
        e.phdrs[2] = [PT_INTERP, PF_R, where, 0, 0, len(path), len(path), 1]
        if where + len(path) <= e.size:
            e.patches.append((where, path))
    return fn


def setf(ph, field, value):
    names = ["type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz", "align"]
    def fn(e):
        e.phdrs[ph][names.index(field)] = value
    return fn


def attr(name, value):
    return lambda e: setattr(e, name, value)


def random_bytes():
    rng = random.Random(1234)
    b = bytes(rng.randrange(256) for _ in range(4096))
    assert not b.startswith(b"\x7fELF")
    return b


GOOD = {
    "good-minimal.elf": Elf().build(),
    "good-pie.elf": pie().build(),
    "good-shared-page.elf": shared_page().build(),
    # Dynamic programs: the loader records PT_INTERP; the caller loads the interpreter.
    "good-interp.elf": mutate(interp(b"/lib64/ld-linux-x86-64.so.2\0")),
    "good-interp-dyn.elf": mutate(interp(b"/lib/ld-musl-x86_64.so.1\0"), pie),
}

BAD = {
    "bad-empty.elf": b"",
    "bad-random.elf": random_bytes(),
    "bad-script.elf": b"#!/bin/sh\necho not an ELF\n",
    "bad-truncated-ident.elf": Elf().build()[:10],
    "bad-truncated-ehdr.elf": Elf().build()[:40],
    "bad-class32.elf": mutate(attr("ident", ident(cls=1))),
    "bad-class-invalid.elf": mutate(attr("ident", ident(cls=3))),
    "bad-big-endian.elf": mutate(attr("ident", ident(data=2))),
    "bad-ident-version.elf": mutate(attr("ident", ident(version=0))),
    "bad-machine-aarch64.elf": mutate(attr("machine", EM_AARCH64)),
    "bad-machine-i386.elf": mutate(attr("machine", EM_386)),
    "bad-type-rel.elf": mutate(attr("type", ET_REL)),
    "bad-type-core.elf": mutate(attr("type", ET_CORE)),
    "bad-type-unknown.elf": mutate(attr("type", 0x1234)),
    "bad-version.elf": mutate(attr("version", 0)),
    "bad-phentsize.elf": mutate(attr("phentsize", 32)),
    "bad-phnum-xnum.elf": mutate(attr("phnum", 0xFFFF)),
    "bad-phnum-huge.elf": mutate(attr("phnum", 200)),
    "bad-phnum-zero.elf": mutate(attr("phnum", 0)),
    "bad-phoff-past-end.elf": mutate(attr("phoff", 0x2000)),
    "bad-phoff-overflow.elf": mutate(attr("phoff", 0xFFFFFFFFFFFFFF00)),
    "bad-interp-escape.elf": mutate(interp(b"/lib/\x01\xff\\ld" + b"x" * 300)),
    "bad-interp-past-end.elf": mutate(interp(b"/lib64/ld-linux-x86-64.so.2\0", 0x10000)),
    "bad-interp-empty.elf": mutate(interp(b"\0")),
    "bad-interp-relative.elf": mutate(interp(b"ld-linux-x86-64.so.2\0")),
    "bad-interp-inner-nul.elf": mutate(interp(b"/lib/ld.so\0/etc/passwd\0")),
    "bad-interp-long.elf": mutate(
        lambda e: (setattr(e, "size", 0x3000 + 5002), interp(b"/" + b"a" * 5000 + b"\0", 0x3000)(e))),
    "bad-interp-two.elf": mutate(
        lambda e: (interp(b"/lib/a.so\0")(e),
                   e.phdrs.append([PT_INTERP, PF_R, 0x900, 0, 0, 10, 10, 1]))),
    "bad-load-past-end.elf": mutate(setf(1, "filesz", 0x50000)),
    "bad-load-offset-overflow.elf": mutate(
        lambda e: (setf(1, "offset", 0xFFFFFFFFFFFFF000)(e), setf(1, "vaddr", 0x402000)(e))),
    "bad-load-filesz-gt-memsz.elf": mutate(setf(1, "memsz", 8)),
    "bad-load-align.elf": mutate(setf(1, "align", 0x3000)),
    "bad-load-congruence.elf": mutate(setf(1, "vaddr", 0x402100)),
    "bad-load-wrap.elf": mutate(setf(1, "vaddr", 0xFFFFFFFFFFFFE000)),
    "bad-load-below-min.elf": mutate(setf(1, "vaddr", 0x2000)),
    "bad-load-above-max.elf": mutate(setf(1, "vaddr", 0x7F0000002000)),
    "bad-load-overlap.elf": mutate(
        lambda e: (setf(1, "vaddr", 0x400000)(e), setf(1, "memsz", 0x1000)(e))),
    "bad-no-load.elf": mutate(lambda e: [ph.__setitem__(0, PT_NOTE) for ph in e.phdrs[:2]]),
    "bad-empty-loads.elf": mutate(
        lambda e: [ph.__setitem__(slice(5, 7), [0, 0]) for ph in e.phdrs[:2]]),
    "bad-too-many-loads.elf": mutate(many_loads),
    "bad-entry-outside.elf": mutate(attr("entry", 0x300000)),
    "bad-entry-not-exec.elf": mutate(attr("entry", 0x402000)),
    "bad-tls.elf": mutate(
        lambda e: e.phdrs.__setitem__(2, [PT_TLS, PF_R, 0x2000, 0x402000, 0, 16, 8, 8])),
    "bad-pie-align.elf": mutate(setf(2, "align", 1 << 62), pie),
}


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, data in {**GOOD, **BAD}.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
