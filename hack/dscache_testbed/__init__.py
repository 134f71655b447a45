"""Local Kubernetes test bed: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a real
node (kubelet, containerd, runc) running pods from images built here.

Test infrastructure only (not shipped): see hack/README.md.
"""
