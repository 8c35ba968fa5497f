; liburing_connect_deny_v4_subnet: refuse AF_INET connects into 127.42.0.0/24, allow the rest.
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_deny_v4_subnet_filter, added in f4b781ed);
;         spec §9.3 test_connect_deny_v4_subnet.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET, inet, allow
inet:   ld      [connect.v4_addr]
        and     #ip4("255.255.255.0")
        jeq     #ip4("127.42.0.0"), deny
allow:  ret     ALLOW
deny:   ret     DENY
