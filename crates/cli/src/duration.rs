//! Durations in flags (`--ttl 15s`, `--timeout 500ms`): one parser, shared with config files and
//! query strings through the wire crate, so every component reads `2m` the same way.

pub(crate) use switchyard_wire::duration::parse_duration;
