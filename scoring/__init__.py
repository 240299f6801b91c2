"""Official competition scoring: per-episode reports, aggregation and the evaluation harness."""
