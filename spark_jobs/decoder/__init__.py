"""Capture decoding: pcap, pcapng, gzip of either, and Wireshark CSV exports
into Arrow record batches with ``spark_jobs.packet_schema.PACKET_SCHEMA``.

Typical use::

    decoder = CaptureDecoder("trace.pcapng.gz", capture_id="trace-1")
    for batch in decoder.batches():
        ...
    if decoder.summary.error is not None:
        ...  # set the capture aside with str(decoder.summary.error)
"""

from spark_jobs.decoder.decoder import CaptureDecoder, DecodeSummary, decode_to_table
from spark_jobs.decoder.errors import CaptureError

__all__ = ["CaptureDecoder", "CaptureError", "DecodeSummary", "decode_to_table"]
