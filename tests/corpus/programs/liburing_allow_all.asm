; liburing_allow_all: allow every request of the opcode it is attached to.
; origin: liburing test/cbpf_filter.c at 27255f4c (allow_all_filter); spec §9.3 test_deny_rest
;         (registered with DENY_REST), test_cannot_loosen_restrictions, test_multi_level_inherit.
; attached to: IORING_OP_NOP, pdu_size 0.   verified on a kernel: not yet.
        ret     ALLOW
