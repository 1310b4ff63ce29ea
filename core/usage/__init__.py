"""Recommendations from usage: which process series the PromQL of rules and dashboards reads,
and the pipeline that keeps exactly those individual (docs/recommend.md)."""
