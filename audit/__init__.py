"""monoculture subpackage."""
