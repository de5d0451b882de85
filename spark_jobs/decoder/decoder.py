"""The capture decoder: format detection, streaming, summary and error reporting."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa

from spark_jobs.decoder.dissect import dissect, to_record_batch
from spark_jobs.decoder.errors import CaptureError
from spark_jobs.decoder.flow_names import FlowNames
from spark_jobs.decoder.pcap import MAGICS as PCAP_MAGICS
from spark_jobs.decoder.pcap import PcapReader
from spark_jobs.decoder.pcapng import PcapngReader
from spark_jobs.decoder.records import RecordChunk
from spark_jobs.decoder.source import ByteStream, open_source
from spark_jobs.decoder.wireshark_csv import WiresharkCsvReader, looks_like_wireshark_csv
from spark_jobs.packet_schema import PACKET_SCHEMA

logger = logging.getLogger(__name__)

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
MODIFIED_PCAP_MAGICS = (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")
DETECTION_BYTES = 256
DEFAULT_BATCH_FRAMES = 65_536


@dataclass
class DecodeSummary:
    """Findings of one decoding pass, filled in while ``batches()`` runs.

    Attributes:
        capture_id: The capture id written into every row.
        source_name: File name as given, for messages.
        format: ``"pcap"``, ``"pcapng"``, ``"csv"``, or None when not recognised.
        compressed: True when the input was gzip-compressed.
        frames: Frames yielded so far.
        truncated: True when the input ended inside a record (or a gzip stream
            ended before its end marker); every complete frame was yielded.
        malformed_frames: Frames too short for their link-layer header; they
            are kept with null fields and ``malformed`` set.
        snaplen_cut_frames: Frames with fewer captured bytes than wire bytes.
        unsupported_link_types: Link type -> frames of link types the decoder
            does not read; those frames are kept with null fields.
        error: The fatal error that stopped decoding, or None. Frames before
            the fault were yielded.
    """

    capture_id: str
    source_name: str
    format: str | None = None
    compressed: bool = False
    frames: int = 0
    truncated: bool = False
    malformed_frames: int = 0
    snaplen_cut_frames: int = 0
    unsupported_link_types: dict[int, int] = field(default_factory=dict)
    error: CaptureError | None = None


class CaptureDecoder:
    """Decode a pcap, pcapng (either possibly gzip-compressed) or Wireshark CSV
    export into Arrow record batches with ``PACKET_SCHEMA``.

    The format comes from the first bytes of the content, never from the file
    name. The input is read a few MiB at a time, so memory stays bounded by the
    batch size whatever the file size.

    Args:
        source: A path, or a binary file object positioned at the start of the
            capture (for example a stream from object storage). A file object
            is not closed by the decoder.
        capture_id: Value of the ``capture_id`` column.
        name: File name for messages; defaults to the path, or ``"<stream>"``.
        batch_frames: Maximum rows per record batch, at least 1.
        first_frame_number: Number of the first frame, for a caller that
            decodes a later part of a larger capture.
        previous_timestamp_ns: Timestamp of the frame before the first one,
            so that ``inter_arrival_ns`` continues across parts.
    """

    def __init__(
        self,
        source: str | os.PathLike | BinaryIO,
        *,
        capture_id: str,
        name: str | None = None,
        batch_frames: int = DEFAULT_BATCH_FRAMES,
        first_frame_number: int = 1,
        previous_timestamp_ns: int | None = None,
    ) -> None:
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be at least 1, got {batch_frames}")
        if first_frame_number < 1:
            raise ValueError(f"first_frame_number must be at least 1, got {first_frame_number}")
        if name is None:
            name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<stream>"
        self._source = source
        self._name = name
        self._batch_frames = batch_frames
        self._first_frame_number = first_frame_number
        self._previous_timestamp_ns = previous_timestamp_ns
        self.summary = DecodeSummary(capture_id=capture_id, source_name=name)
        self._flow_names = FlowNames()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield record batches with exactly ``PACKET_SCHEMA`` (label column null).

        Never raises for damaged input: a fatal problem stops iteration and is
        stored in ``summary.error``.

        Raises:
            OSError: The source cannot be opened.
        """
        opened = open_source(self._source)
        self.summary.compressed = opened.compressed
        try:
            yield from self._decode(opened.stream)
        finally:
            opened.close()

    def _decode(self, raw: BinaryIO) -> Iterator[pa.RecordBatch]:
        stream = ByteStream(raw)
        try:
            reader = self._open_reader(stream)
            if reader is None:
                return
            if not reader.read_header():
                self.summary.error = reader.error
                return
            if isinstance(reader, WiresharkCsvReader):
                for batch in reader.batches():
                    self.summary.frames += batch.num_rows
                    yield batch
            else:
                for chunk in reader.chunks():
                    yield self._to_batch(chunk)
            self.summary.truncated = reader.truncated or stream.cut_short
            self.summary.error = reader.error
            if stream.error is not None:
                raise stream.error
            if stream.cut_short and not reader.truncated:
                logger.warning(
                    "%s: the gzip stream ends before its end marker, after frame %d; the frames before "
                    "are kept. Copy the file again from its source to get the rest.",
                    self._name, self._first_frame_number + self.summary.frames - 1,
                )
        except (zlib.error, OSError) as error:
            if not self.summary.compressed:
                raise
            # Damaged gzip data (gzip.BadGzipFile is an OSError); frames before it were yielded.
            self.summary.error = CaptureError(
                self._name,
                f"The gzip stream is damaged ({error}).",
                frame_number=self._first_frame_number + self.summary.frames,
                byte_offset=stream.offset,
                action="The frames before it were kept; recompress the capture from its source.",
            )
        if self.summary.error is not None:
            logger.warning("%s", self.summary.error)

    def _open_reader(self, stream: ByteStream):
        stream.fill(DETECTION_BYTES)
        head = stream.buffer[stream.pos:stream.pos + DETECTION_BYTES]
        options = dict(first_frame_number=self._first_frame_number, batch_frames=self._batch_frames)
        if not head:
            self._no_content(stream)
            return None
        magic = head[:4]
        if magic in PCAP_MAGICS:
            self.summary.format = "pcap"
            return PcapReader(stream, self._name, **options)
        if magic == PCAPNG_MAGIC:
            self.summary.format = "pcapng"
            return PcapngReader(stream, self._name, **options)
        if looks_like_wireshark_csv(head):
            self.summary.format = "csv"
            return WiresharkCsvReader(stream, self._name, capture_id=self.summary.capture_id, **options)
        if magic in MODIFIED_PCAP_MAGICS:
            reason = "The file is a modified (Kuznetzov) libpcap capture, which is not supported."
            action = "Convert it with `editcap -F pcap IN OUT`."
        else:
            reason = (
                f"Not a capture file: it starts with bytes {head[:8].hex(' ')}, which are not "
                "the magic number of pcap, pcapng or gzip, nor a Wireshark CSV header."
            )
            action = "Supply a pcap, pcapng (optionally gzip-compressed) or a Wireshark CSV export."
        self.summary.error = CaptureError(self._name, reason, byte_offset=0, action=action)
        return None

    def _no_content(self, stream: ByteStream) -> None:
        """Record why the input has no byte to detect a format from.

        Raises:
            zlib.error: The gzip stream is damaged before its first byte.
        """
        if stream.error is not None:
            raise stream.error
        if stream.cut_short:
            self.summary.truncated = True
            reason = "The gzip stream ends before its first decompressed byte: the file was cut short."
            action = "Copy the file again from its source."
        else:
            where = " after gzip decompression" if self.summary.compressed else ""
            reason = f"The file is empty (0 bytes{where}), so it contains no capture."
            action = "Check that the upload or copy finished."
        self.summary.error = CaptureError(self._name, reason, byte_offset=0, action=action)

    def _to_batch(self, chunk: RecordChunk) -> pa.RecordBatch:
        dissection, unsupported = dissect(chunk)
        summary = self.summary
        for link_type, count in unsupported.items():
            if link_type not in summary.unsupported_link_types:
                logger.warning(
                    "%s: link type %d is not supported; its frames are kept with null fields "
                    "and the protocol name 'DLT %d'",
                    self._name, link_type, link_type,
                )
            summary.unsupported_link_types[link_type] = summary.unsupported_link_types.get(link_type, 0) + count

        batch = to_record_batch(
            chunk,
            dissection,
            capture_id=summary.capture_id,
            first_frame_number=self._first_frame_number + summary.frames,
            previous_timestamp_ns=self._previous_timestamp_ns,
            flow_names=self._flow_names,
        )
        if len(chunk):
            self._previous_timestamp_ns = int(chunk.timestamp_ns[-1])
        summary.frames += len(chunk)
        summary.malformed_frames += int(dissection.malformed.sum())
        summary.snaplen_cut_frames += int((chunk.cap_len < chunk.frame_len).sum())
        return batch


def decode_to_table(
    source: str | os.PathLike | BinaryIO, *, capture_id: str, name: str | None = None
) -> tuple[pa.Table, DecodeSummary]:
    """Decode a whole capture into one table; see ``CaptureDecoder`` for the contract.

    The table keeps every frame in memory, so this suits tests and small
    captures; jobs over large captures iterate ``CaptureDecoder.batches()``.
    """
    decoder = CaptureDecoder(source, capture_id=capture_id, name=name)
    batches = list(decoder.batches())
    return pa.Table.from_batches(batches, schema=PACKET_SCHEMA), decoder.summary
