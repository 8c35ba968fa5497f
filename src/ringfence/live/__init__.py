"""The real kernel through ctypes: rings, task restrictions, a feature probe, and the live scenario backend.

Standard library only. ``_sys`` is the only module that touches ctypes declarations of kernel structs.
"""
