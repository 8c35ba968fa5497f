; liburing_connect_allow_v6_subnet: AF_INET6 connects into fe80::/16 only (mask within word 0).
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_allow_v6_subnet_filter, added in f4b781ed);
;         spec §9.3 test_connect_allow_v6_subnet.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET6, w0, deny
w0:     ld      [connect.v6_addr.0]
        and     #ip6("ffff::", 0)
        jeq     #ip6("fe80::", 0), allow, deny
allow:  ret     ALLOW
deny:   ret     DENY
