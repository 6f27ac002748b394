"""What both sides of the runtime share: the artifact reader and its spec, execution providers,
result output, health reports, metrics, thresholds and report helpers."""
