"""The ``service`` feature set: the ``paper`` features with ports by role instead of by number.

A conversation has a server side, which listens on a port chosen by the
service's operator, and a client side, whose port the client's operating system
picks for each connection. The client port therefore changes between connections
while the behaviour stays the same. A model that reads it as a number learns
noise, so a first connection from a new client port looks new. This set keeps the
``paper`` features except the two raw ports and adds:

* ``log_service_port``: ``log(1 + port)`` of the server side's port, 0 for a
  frame without ports. The logarithm keeps well-known ports (22, 53, 443) apart
  after min-max scaling, which raw port numbers up to 65535 would squash
  together;
* ``from_server``: 1 when the server side sent the frame, 0 when the client
  side did, 0.5 for a frame without ports.

Which side is the server is decided per conversation (protocol and the two
address and port endpoints, in either direction), over the whole capture:

1. a TCP conversation whose capture holds a connection request (SYN without
   ACK) has its server at the request's destination; with only a SYN-ACK, at
   the SYN-ACK's source. The first such frame decides;
2. otherwise (UDP, or TCP whose handshake precedes the capture) the endpoint
   that talks with more distinct peer endpoints of its protocol in the capture
   is the server, since a listening port serves many clients; on a tie, the
   lower port. Traffic between equal ports (mDNS from 5353 to 5353) has no
   real server side, and the rule picks one.

Rows depend on the whole capture, so the set groups by ``capture_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.features import PAPER_CATEGORICAL_FEATURES, PAPER_NUMERIC_FEATURES, FeatureSet, derive_paper_rows

SYN = 0x02
ACK = 0x10
# Value of ``from_server`` for frames without ports (ARP, ICMP, fragments).
NO_SIDE = 0.5

# ``paper`` columns that this set replaces.
RAW_PORTS: tuple[str, ...] = ("src_port", "dst_port")

SERVICE_NUMERIC_FEATURES: tuple[str, ...] = tuple(
    name for name in PAPER_NUMERIC_FEATURES if name not in RAW_PORTS
) + ("log_service_port", "from_server")


def _endpoint(protocol: pd.Series, addresses: pd.Series, ports: pd.Series) -> pd.Series:
    """Return ``protocol/address|port`` per frame, so TCP and UDP on one port are two endpoints."""
    return protocol + "/" + addresses.astype("string").fillna("") + "|" + ports.astype("Int64").astype("string")


def server_is_source(packets: pd.DataFrame) -> pd.Series:
    """Return, per frame with both ports, whether its source is the conversation's server side.

    Frames without both ports are left out of the result (see the module
    docstring for the rule). ``packets`` is one capture's packet rows.
    """
    has_ports = packets["src_port"].notna() & packets["dst_port"].notna()
    framed = packets.loc[has_ports]
    if framed.empty:
        return pd.Series(dtype=bool)

    protocol = framed["ip_proto"].astype("Int64").astype("string").fillna("")
    source = _endpoint(protocol, framed["src_addr"], framed["src_port"])
    destination = _endpoint(protocol, framed["dst_addr"], framed["dst_port"])
    low = source.where(source <= destination, destination)
    high = source.where(source > destination, destination)
    conversation = low + "~" + high

    # Rule 1: the first connection request or reply of a TCP conversation.
    flags = framed["tcp_flags"].fillna(0).astype(np.int64)
    request = (flags & (SYN | ACK)) == SYN
    reply = (flags & (SYN | ACK)) == (SYN | ACK)
    opening = request | reply
    opening_server = pd.Series(
        np.where(request[opening], destination[opening], source[opening]), index=framed.index[opening]
    )
    server_by_handshake = opening_server.groupby(conversation[opening], sort=False).first()

    # Rule 2: the endpoint with more distinct peers, then the lower port.
    pairs = pd.concat(
        [pd.DataFrame({"endpoint": source, "peer": destination}), pd.DataFrame({"endpoint": destination, "peer": source})]
    )
    peers = pairs.drop_duplicates().groupby("endpoint", sort=False)["peer"].size()
    source_peers = source.map(peers).to_numpy()
    destination_peers = destination.map(peers).to_numpy()
    source_port = framed["src_port"].to_numpy(np.int64)
    destination_port = framed["dst_port"].to_numpy(np.int64)
    by_peers = np.where(
        source_peers != destination_peers, source_peers > destination_peers, source_port < destination_port
    )

    decided = conversation.map(server_by_handshake)
    result = pd.Series(by_peers, index=framed.index)
    known = decided.notna()
    result[known] = (decided[known] == source[known]).to_numpy()
    return result


def derive_service_rows(packets: pd.DataFrame) -> pd.DataFrame:
    """Build ``service`` feature rows from one capture's packets, sorted by time, then frame number."""
    rows = derive_paper_rows(packets).drop(columns=list(RAW_PORTS))
    from_source = server_is_source(packets)

    service_port = pd.Series(0.0, index=packets.index)
    side = pd.Series(NO_SIDE, index=packets.index)
    if not from_source.empty:
        index = from_source.index
        chosen = np.where(from_source, packets.loc[index, "src_port"], packets.loc[index, "dst_port"])
        service_port[index] = chosen.astype(np.float64)
        side[index] = from_source.astype(np.float64).to_numpy()
    rows["log_service_port"] = np.log1p(service_port.to_numpy())
    rows["from_server"] = side.to_numpy()
    return rows


SERVICE = FeatureSet(
    name="service",
    row_unit="frame",
    numeric_features=SERVICE_NUMERIC_FEATURES,
    categorical_features=PAPER_CATEGORICAL_FEATURES,
    derive=derive_service_rows,
    group_by=("capture_id",),
)
