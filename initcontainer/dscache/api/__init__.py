"""The DatasetCache resource: group/version/kind, the spec and status models, names."""
