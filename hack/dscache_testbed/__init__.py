"""Local Kubernetes test bed: real kube-apiserver, kube-controller-manager and etcd, plus a node agent.

Test infrastructure only (not shipped): see hack/README.md.
"""
