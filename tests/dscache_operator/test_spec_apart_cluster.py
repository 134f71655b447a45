"""The webhook and the reconciler refuse nested sources with the spec model's one line (the init
container used to exit 2 in every pod instead)."""

from __future__ import annotations

import asyncio

import pytest

from dscache_operator.podpatch import Denied
from tests.dscache_operator.test_admission import admission, cache
from tests.dscache_operator.test_reconcile import SPEC, World, claim, condition
from tests.dscache_operator.test_reconcile import cache as stored
from tests.factories import version_items

NESTED = "spec.versions: versions[1] (objects/a/b) lies inside versions[0] (objects/a)"


def test_the_webhook_refuses_nested_sources_naming_both() -> None:
    new = cache("nest", versions=version_items("objects/a=v1", "objects/a/b=v1"))
    with pytest.raises(Denied) as err:
        asyncio.run(admission().validate_cache(new, None))
    assert str(err.value).startswith(NESTED + ": pods link each source at")


def test_the_reconciler_creates_nothing_for_nested_sources_stored_while_the_webhook_was_off() -> None:
    world = World(claim(), stored(spec={**SPEC, "versions": version_items("objects/a=v1", "objects/a/b=v1")}))
    world.reconcile()
    status = world.status()
    assert (status["phase"], condition(status, "Ready")) == ("Failed", ("False", "InvalidSpec"))
    assert status["message"].startswith(NESTED)
    assert world.created() == []
