"""Derive a corpus of damaged and unusual captures from the shared cases and captures.

The corpus is built at test time into a temporary folder, so no copy of the
source files lives in the repository. Every derivation is deterministic for a
given seed:

* ``case``: each shared field case as it is (pcap, pcapng, gzip, CSV, broken files).
* ``truncated``: small real captures cut at many byte offsets: inside the file
  header, at and around record or block boundaries, and inside record data.
* ``length``: classic pcap record lengths (captured length) and pcapng block
  total lengths overwritten with 0, tiny, odd, oversized and 2^32 - 1 values.
* ``flipped``: single bytes XOR-ed with 0xFF at seeded positions, in the
  header region and in the record region.
* ``mutated``: seeded random edits (overwrite, insert, delete, duplicate a span).
* ``gzip``: a damaged capture gzip-compressed, and a gzip stream cut short.

Run as a script to write the corpus to a folder for a look with tshark::

    python -m tests.corpus.derive /tmp/corpus
"""

from __future__ import annotations

import gzip
import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

CORPUS_SEED = 20261204

# Small real captures whose every record can be checked: a classic pcap with the
# nanosecond magic and Linux cooked link type, a pcapng with two interfaces, and
# a classic microsecond pcap of GRE tunnels.
TRUNCATION_SOURCES = (
    "nsec-sll-tcp-handshake.pcap",
    "pcapng-2if-linux-windows-merged.pcapng",
    "gre-various-encaps.pcap",
)
MUTATION_SOURCES = (
    "nsec-sll-tcp-handshake.pcap",
    "pcapng-2if-linux-windows-merged.pcapng",
    "gre-various-encaps.pcap",
    "two-link-types.pcapng",
    "qinq-vlan.pcap",
    "ip-fragments.pcap",
)

PCAP_FILE_HEADER_BYTES = 24
PCAP_RECORD_HEADER_BYTES = 16
PCAPNG_PACKET_BLOCK_TYPES = (0x00000002, 0x00000003, 0x00000006)


@dataclass(frozen=True)
class CorpusFile:
    """One corpus file and how it was made.

    Attributes:
        path: where the file was written.
        kind: the derivation (``case``, ``truncated``, ``length``, ``flipped``,
            ``mutated`` or ``gzip``).
        source: path of the file it was derived from.
        cut_at_bytes: for ``truncated`` files, the length the source was cut to.
    """

    path: Path
    kind: str
    source: Path
    cut_at_bytes: int | None = None


def _byte_order_of_pcap(data: bytes) -> str:
    return "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"


def pcap_record_offsets(data: bytes) -> list[tuple[int, int]]:
    """Return ``(offset, total_bytes)`` of each complete classic pcap record.

    ``total_bytes`` counts the 16-byte record header and the captured bytes.
    Walking stops at the first record that does not fit in ``data``.
    """
    order = _byte_order_of_pcap(data)
    records = []
    offset = PCAP_FILE_HEADER_BYTES
    while offset + PCAP_RECORD_HEADER_BYTES <= len(data):
        (cap_len,) = struct.unpack_from(order + "I", data, offset + 8)
        end = offset + PCAP_RECORD_HEADER_BYTES + cap_len
        if end > len(data):
            break
        records.append((offset, end - offset))
        offset = end
    return records


def pcapng_blocks(data: bytes) -> list[tuple[int, int, int]]:
    """Return ``(offset, block_type, total_bytes)`` of each complete pcapng block.

    Assumes one byte order for the whole file, read from the first section
    header, which holds for the sources used here.
    """
    order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    blocks = []
    offset = 0
    while offset + 12 <= len(data):
        block_type, total = struct.unpack_from(order + "II", data, offset)
        if total < 12 or offset + total > len(data):
            break
        blocks.append((offset, block_type, total))
        offset += total
    return blocks


def complete_frames_before(data: bytes, cut_at_bytes: int) -> int:
    """Return how many frame records of the capture ``data`` end at or before ``cut_at_bytes``."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return sum(
            1 for offset, block_type, total in pcapng_blocks(data)
            if block_type in PCAPNG_PACKET_BLOCK_TYPES and offset + total <= cut_at_bytes
        )
    if cut_at_bytes < PCAP_FILE_HEADER_BYTES:
        return 0
    return sum(1 for offset, total in pcap_record_offsets(data) if offset + total <= cut_at_bytes)


def _truncation_offsets(data: bytes) -> list[int]:
    """Cut points: inside the file header, around every record or block boundary, and mid-record."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        boundaries = [offset for offset, _type, _total in pcapng_blocks(data)]
    else:
        boundaries = [offset for offset, _total in pcap_record_offsets(data)]
    offsets = {1, 4, 11, 23}
    for boundary in boundaries[:4] + boundaries[-2:]:
        offsets.update({boundary, boundary + 1, boundary + 8, boundary + 15, boundary + 20})
    offsets.add(len(data) - 1)
    return sorted(offset for offset in offsets if 0 < offset < len(data))


def _with_uint32(data: bytes, offset: int, value: int, order: str) -> bytes:
    patched = bytearray(data)
    struct.pack_into(order + "I", patched, offset, value)
    return bytes(patched)


def _length_corruptions(name: str, data: bytes) -> dict[str, bytes]:
    """Overwrite record or block length fields with values a decoder must survive."""
    variants = {}
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        blocks = pcapng_blocks(data)
        packet_block = next(block for block in blocks if block[1] in PCAPNG_PACKET_BLOCK_TYPES)
        offset, _type, total = packet_block
        for label, value in (("zero", 0), ("eight", 8), ("odd", total + 1), ("past-end", len(data) * 4),
                             ("max", 0xFFFFFFFF)):
            variants[f"{name}.block-total-{label}"] = _with_uint32(data, offset + 4, value, order)
        variants[f"{name}.block-trailer-mismatch"] = _with_uint32(data, offset + total - 4, total + 4, order)
        variants[f"{name}.section-total-zero"] = _with_uint32(data, 4, 0, order)
        # EPB captured length (offset 20 in the block) larger than the block.
        if packet_block[1] == 0x00000006:
            variants[f"{name}.epb-caplen-past-block"] = _with_uint32(data, offset + 20, total * 2, order)
        return variants

    order = _byte_order_of_pcap(data)
    records = pcap_record_offsets(data)
    first, _ = records[0]
    last, _ = records[-1]
    for label, value in (("zero", 0), ("one", 1), ("snaplen-plus-one", 65536), ("past-end", len(data)),
                         ("max", 0xFFFFFFFF)):
        variants[f"{name}.caplen-{label}"] = _with_uint32(data, first + 8, value, order)
    variants[f"{name}.last-caplen-past-end"] = _with_uint32(data, last + 8, len(data), order)
    # Original (wire) length below the captured length.
    variants[f"{name}.origlen-below-caplen"] = _with_uint32(data, first + 12, 1, order)
    variants[f"{name}.snaplen-zero"] = _with_uint32(data, 16, 0, order)
    variants[f"{name}.linktype-unknown"] = _with_uint32(data, 20, 4242, order)
    return variants


def _flip(data: bytes, rng: random.Random, region: tuple[int, int]) -> bytes:
    start, stop = region
    position = rng.randrange(start, max(start + 1, min(stop, len(data))))
    patched = bytearray(data)
    patched[position] ^= 0xFF
    return bytes(patched)


def _mutate(data: bytes, rng: random.Random, edits: int) -> bytes:
    """Apply ``edits`` random overwrites, insertions, deletions and span duplications."""
    patched = bytearray(data)
    for _ in range(edits):
        position = rng.randrange(len(patched)) if patched else 0
        action = rng.choice(("overwrite", "insert", "delete", "duplicate"))
        if action == "overwrite" and patched:
            patched[position] = rng.randrange(256)
        elif action == "insert":
            patched[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif action == "delete" and patched:
            del patched[position:position + rng.randint(1, 8)]
        elif patched:
            span = patched[position:position + rng.randint(4, 32)]
            target = rng.randrange(len(patched))
            patched[target:target] = span
    return bytes(patched)


def derive_corpus(cases_dir: Path, captures_dir: Path, output_dir: Path, seed: int = CORPUS_SEED) -> list[CorpusFile]:
    """Write the corpus into ``output_dir`` and describe each file.

    Args:
        cases_dir: the folder of small field cases.
        captures_dir: the folder of real public captures.
        output_dir: an existing, empty folder that receives the derived files.
        seed: seed of the flips and random mutations.

    Returns:
        One entry per corpus file, shared cases first, then derived files in a
        fixed order.
    """
    rng = random.Random(seed)
    corpus: list[CorpusFile] = []

    def write(name: str, payload: bytes, kind: str, source: Path, cut_at_bytes: int | None = None) -> None:
        path = output_dir / name
        path.write_bytes(payload)
        corpus.append(CorpusFile(path=path, kind=kind, source=source, cut_at_bytes=cut_at_bytes))

    for case in sorted(cases_dir.iterdir()):
        if case.suffix == ".md":
            continue
        corpus.append(CorpusFile(path=case, kind="case", source=case))

    def source_path(name: str) -> Path:
        return captures_dir / name if (captures_dir / name).is_file() else cases_dir / name

    for name in TRUNCATION_SOURCES:
        source = source_path(name)
        data = source.read_bytes()
        stem, suffix = name.rsplit(".", 1)
        for offset in _truncation_offsets(data):
            write(f"{stem}.cut-{offset:06d}.{suffix}", data[:offset], "truncated", source, cut_at_bytes=offset)
        for variant, payload in _length_corruptions(stem, data).items():
            write(f"{variant}.{suffix}", payload, "length", source)

    for name in MUTATION_SOURCES:
        source = source_path(name)
        data = source.read_bytes()
        stem, suffix = name.rsplit(".", 1)
        for index in range(3):
            write(f"{stem}.flip-header-{index}.{suffix}", _flip(data, rng, (0, 64)), "flipped", source)
            write(f"{stem}.flip-records-{index}.{suffix}", _flip(data, rng, (64, len(data))), "flipped", source)
        for index in range(4):
            write(f"{stem}.mutated-{index}.{suffix}", _mutate(data, rng, edits=1 + index * 3), "mutated", source)

    gzip_source = source_path("gre-various-encaps.pcap")
    gzip_data = gzip_source.read_bytes()
    compressed = gzip.compress(gzip_data, mtime=0)
    write("gre-various-encaps.gzip-cut.pcap.gz", compressed[: len(compressed) // 2], "gzip", gzip_source)
    write("gre-various-encaps.gzip-flipped.pcap.gz", _flip(compressed, rng, (32, len(compressed) - 16)), "gzip", gzip_source)
    write("gre-various-encaps.gzip-of-mutated.pcap.gz", gzip.compress(_mutate(gzip_data, rng, 6), mtime=0), "gzip", gzip_source)
    return corpus


def main(argv: list[str]) -> int:
    """Write the corpus to the folder named in ``argv[0]``, from the shared folders beside the repository."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tests.corpus.derive OUTPUT_FOLDER\n")
        return 2
    shared = Path(__file__).resolve().parents[3] / "shared"
    output_dir = Path(argv[0])
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = derive_corpus(shared / "cases", shared / "captures", output_dir)
    sys.stdout.write(f"{len(corpus)} corpus files, derived ones in {output_dir}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
