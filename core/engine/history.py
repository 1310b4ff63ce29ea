"""Stored snapshots as bytes, and many snapshots as one history frame.

A stored snapshot is its snapshot frame's CSV columns as Parquet (zstd): about a tenth
of the CSV, typed, and read back through the same validation every snapshot passes
(``normalise_snapshot``). A history is the stored snapshots of one scope concatenated:
each host's scrapes are ranked again over all of them, so CPU utilisation, variability and
restarts are computed across snapshots (between two snapshots, utilisation is the average
over the gap).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.domain.errors import ValidationError
from core.engine.snapshot import CSV_COLUMNS, normalise_snapshot

MAX_STORED_BYTES = 256 * 1024**2  # one stored snapshot (Parquet); larger ones are refused


def encode(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame[[c for c in CSV_COLUMNS if c in frame.columns]], preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    if len(data) > MAX_STORED_BYTES:
        raise ValidationError(f"the snapshot is {len(data):,} bytes as Parquet; at most {MAX_STORED_BYTES:,} "
                              "are stored (take fewer hosts or scrapes)")
    return data


def decode(data: bytes) -> pd.DataFrame:
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(f"a stored snapshot cannot be read: {exc}") from None
    return normalise_snapshot(table)


def combine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One snapshot frame from several (oldest first or not: rows are sorted by time).

    A row present in two snapshots (same host, time and pid: overlapping exports) is kept once.
    """
    if not frames:
        raise ValidationError("no stored snapshots to learn from: add some with `phoenix snapshot add`")
    cols = [c for c in CSV_COLUMNS if c in frames[0].columns]
    parts = [f[cols].astype({c: object for c in cols if isinstance(f[c].dtype, pd.CategoricalDtype)})
             for f in frames]
    df = pd.concat(parts, ignore_index=True).drop_duplicates(["host_name", "timestamp", "pid"], keep="first")
    return normalise_snapshot(df)
