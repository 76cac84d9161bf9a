"""The hostile-input corpus as a whole: large enough, every category and surface covered, ids
unique. (Each case is run by test_hostile_gateway.py, test_hostile_lambda_stdio.py and
test_hostile_proxy.py.)"""

from __future__ import annotations

from collections import Counter

from hostile import CATEGORIES, SURFACES
from hostile.http_cases import CASES as HTTP
from hostile.lambda_cases import CASES as LAMBDA
from hostile.proxy_cases import CASES as PROXY
from hostile.stdio_cases import CASES as STDIO

CORPUS = [*HTTP, *LAMBDA, *STDIO, *PROXY]


def test_corpus_has_at_least_80_cases_with_unique_ids():
    ids = Counter(case.id for case in CORPUS)
    assert [case for case, count in ids.items() if count > 1] == []
    assert len(CORPUS) >= 80, len(CORPUS)


def test_corpus_covers_every_category_and_surface():
    categories = Counter(case.category for case in CORPUS)
    surfaces = Counter(case.surface for case in CORPUS)
    assert set(categories) == set(CATEGORIES), set(CATEGORIES) - set(categories)
    assert set(surfaces) == set(SURFACES), set(SURFACES) - set(surfaces)

