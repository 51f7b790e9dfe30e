"""Shared machinery of the code location: resources, how extracts land, the push-flow mechanism, tables."""
