"""dscache control plane: the kopf operator for DatasetCache resources.

Layout (kopf's own layering: handlers -> decisions -> I/O):
- `handlers`: thin kopf handlers; `reconcile`: the orchestration, one lock per resource and per claim;
- pure builders `volume`, `installer`, `cleanup` (on `objects`), pure decisions `status`, names in `names`;
- `kube`: the one module doing API I/O, behind the `kubeapi.KubeApi` protocol the reconciler and
  admission depend on; `crd`: the CRD generated from `dscache.api`'s models;
- `metrics`, `settings`, `cli` (`dscache-operator run|crd`).
"""
