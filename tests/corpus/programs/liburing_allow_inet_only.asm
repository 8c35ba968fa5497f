; liburing_allow_inet_only: sockets of family AF_INET only.
; origin: liburing test/cbpf_filter.c at 27255f4c (allow_inet_only_filter); spec §9.3
;         test_allow_inet_only, test_allow_inet_only_ring, test_stack_restrictions.
; attached to: IORING_OP_SOCKET, pdu_size 12.   verified on a kernel: not yet.
        ld      [socket.family]
        jeq     #AF_INET, allow, deny
allow:  ret     ALLOW
deny:   ret     DENY
