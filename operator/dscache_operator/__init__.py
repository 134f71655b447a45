"""dscache control plane: the kopf operator for DatasetCache resources (see issue 5)."""
