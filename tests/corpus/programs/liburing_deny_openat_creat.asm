; liburing_deny_openat_creat: refuse opens with O_CREAT (low word of open.flags; little-endian).
; origin: liburing test/cbpf_filter.c at 27255f4c (deny_o_creat_filter); spec §9.3
;         test_deny_openat_creat.
; attached to: IORING_OP_OPENAT, pdu_size 24.   verified on a kernel: not yet.
        ld      [open.flags]
        and     #O_CREAT
        jeq     #0, allow
        ret     DENY
allow:  ret     ALLOW
