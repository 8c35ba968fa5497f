"""``ringfence learn`` and ``ringfence watch``: what a workload asks of io_uring, seen by the kernel.

:mod:`trace` reads tracefs text, :mod:`seen` turns records into counted request shapes, :mod:`generalise` writes
the smallest policy that allows them (by stated rules), :mod:`tracefs` sets up the kernel's observation points
and :mod:`observe` runs a workload under them.
"""
