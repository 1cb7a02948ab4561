"""OCI runtime-spec configuration: model, JSON conversion and the default config."""
