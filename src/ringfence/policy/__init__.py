"""Policies: a language for io_uring sandboxes, compiled to classic restrictions and cBPF filters, proven.

Modules, in the order data flows: :mod:`.load` / :mod:`.build` (files or Python → :mod:`.ast`),
:mod:`.semantics` (what a policy means, as an evaluator), :mod:`.ir` (per-opcode formulas over load-and-compare
atoms), :mod:`.lower` and :mod:`.optimize` (formulas → programs), :mod:`.compile` (→ :mod:`.plan`), the prover
(``policy.prove``, the only module that imports z3), :mod:`.checks` (warnings). Nothing is imported here, so
that applying a Plan (which needs only :mod:`.plan`) stays light.
"""
