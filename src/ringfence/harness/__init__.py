"""The scenario harness: runs scenario files on a real kernel through agents in forked processes.

It sits beside the floors: it uses the kernel interface (:mod:`ringfence.live`) and the scenario language, and
nothing below imports it. Standard library only.
"""
