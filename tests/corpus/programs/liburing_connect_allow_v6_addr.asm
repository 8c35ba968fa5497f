; liburing_connect_allow_v6_addr: AF_INET6 connects to ::1 only; four word compares.
; origin: liburing test/cbpf_filter.c at 27255f4c (connect_allow_v6_addr_filter, added in f4b781ed);
;         spec §9.3 test_connect_allow_v6_addr.
; attached to: IORING_OP_CONNECT, pdu_size 24 (kernel 7.2+).   verified on a kernel: not yet.
        ld      [connect.family]
        jeq     #AF_INET6, w0, deny
w0:     ld      [connect.v6_addr.0]
        jeq     #ip6("::1", 0), w1, deny
w1:     ld      [connect.v6_addr.1]
        jeq     #ip6("::1", 1), w2, deny
w2:     ld      [connect.v6_addr.2]
        jeq     #ip6("::1", 2), w3, deny
w3:     ld      [connect.v6_addr.3]
        jeq     #ip6("::1", 3), allow, deny
allow:  ret     ALLOW
deny:   ret     DENY
