"""The lifecycle, one module per operation; start, kill and delete never import the spec model."""
