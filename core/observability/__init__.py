"""Phoenix observing itself: metrics, structured logs, traces (docs/observability.md)."""
