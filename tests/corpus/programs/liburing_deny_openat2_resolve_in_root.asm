; liburing_deny_openat2_resolve_in_root: refuse openat2 with RESOLVE_IN_ROOT.
; origin: liburing test/cbpf_filter.c at 27255f4c (deny_resolve_in_root_filter); spec §9.3
;         test_deny_openat2_resolve_in_root.
; attached to: IORING_OP_OPENAT2, pdu_size 24.   verified on a kernel: not yet.
        ld      [open.resolve]
        and     #RESOLVE_IN_ROOT
        jeq     #0, allow
        ret     DENY
allow:  ret     ALLOW
