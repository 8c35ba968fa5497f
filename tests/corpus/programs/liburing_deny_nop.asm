; liburing_deny_nop: deny every request of the opcode it is attached to.
; origin: liburing test/cbpf_filter.c at 27255f4c (deny_all_filter); spec §9.3 test_deny_nop,
;         test_deny_nop_ring, test_inherit_restrictions, test_cannot_loosen_restrictions.
; attached to: IORING_OP_NOP, pdu_size 0.   verified on a kernel: not yet.
        ret     DENY
