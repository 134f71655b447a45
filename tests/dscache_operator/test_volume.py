"""The cache volume: claim names and the PVC for volume.create."""

from __future__ import annotations

from dscache.api.spec import parse_spec
from dscache_operator.volume import build_pvc, get_claim_name
from tests.dscache_operator.builder_inputs import BODY, SPEC


def test_pvc_for_volume_create_is_rwx_and_owned() -> None:
    parsed = parse_spec(SPEC)
    pvc = build_pvc(BODY, parsed, get_claim_name("objs", parsed))
    assert pvc["metadata"]["name"] == "objs-dscache"
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "100Gi"}},
        "storageClassName": "rwx",
    }
    assert pvc["metadata"]["ownerReferences"][0]["uid"] == BODY["metadata"]["uid"]
    existing = parse_spec({**SPEC, "volume": {"claimName": "team-cache"}})
    assert get_claim_name("objs", existing) == "team-cache"
