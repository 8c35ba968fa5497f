"""Each available 7.x kernel in qemu against the model: corpus, random scenarios, checker and interpreter.

One boot per kernel runs everything (see conftest); tests are per suite (``[sid]``, ``[experimental]``) and the
corpus is per scenario, so a failure names the kernel and the scenario. A kernel whose version has no profile is
compared with the nearest profile and its differences go to the findings report instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_data import CORPUS
from conformance_kernel import KernelComparison

from ringfence.vm.catalog import SUITES

pytestmark = pytest.mark.vm


def _fail_if_profiled(kernel: KernelComparison, kinds: tuple[str, ...], item: str | None = None) -> None:
    found = [f for f in kernel.findings if f.kind in kinds and (item is None or f.item == item)]
    if not found:
        return
    text = "\n".join(f"{f.kind} {f.item}:\n{f.detail}" for f in found[:20])
    if kernel.profiled:
        pytest.fail(f"{kernel.headline()}: {len(found)} differences\n{text}", pytrace=False)
    pytest.skip(f"{kernel.release} has no profile: {len(found)} findings reported, not failed")


def test_vm_kernel_is_7x_and_matches_its_profile(kernel: KernelComparison) -> None:
    assert kernel.release.startswith("7."), kernel.release
    if kernel.profiled:
        assert kernel.match.same_version
        assert kernel.match.matches_exactly, [a.render() for a in kernel.match.adjustments]
    _fail_if_profiled(kernel, ("probe", "batch"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vm_corpus_scenario(kernel: KernelComparison, path: Path) -> None:
    _fail_if_profiled(kernel, ("corpus", "expectations"), f"{path.parent.name}/{path.stem}")


def test_vm_random_scenarios(kernel: KernelComparison) -> None:
    assert kernel.counts["random compared"] + kernel.skipped["random"] > 0
    _fail_if_profiled(kernel, ("random",))


def test_vm_checker_differential(kernel: KernelComparison) -> None:
    assert kernel.counts["checker compared"] > 0
    _fail_if_profiled(kernel, ("checker",))


def test_vm_interpreter_differential(kernel: KernelComparison) -> None:
    assert kernel.counts["verdict compared"] > 0
    _fail_if_profiled(kernel, ("verdict", "prep"))


def test_vm_no_unexplained_difference(kernel: KernelComparison) -> None:
    """Everything at once: a profiled kernel has no finding at all; a drift kernel's findings are its report."""
    _fail_if_profiled(kernel, tuple({f.kind for f in kernel.findings}))


def test_every_suite_is_known() -> None:
    assert SUITES == ("sid", "experimental")
