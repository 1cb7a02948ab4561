"""The lifecycle, one module per operation; `start`, `kill`, `delete` never import the spec model."""
