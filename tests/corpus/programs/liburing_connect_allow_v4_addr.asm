; liburing_connect_allow_v4_addr: AF_INET connects to 127.0.0.1 only.
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_allow_v4_addr_filter, added in f4b781ed);
;         spec §9.3 test_connect_allow_v4_addr.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET, inet, deny
inet:   ld      [connect.v4_addr]
        jeq     #ip4("127.0.0.1"), allow, deny
allow:  ret     ALLOW
deny:   ret     DENY
