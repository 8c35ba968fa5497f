; Allow only IPv4 sockets: the filter for IORING_OP_SOCKET reads the socket family from the context.
; (the same policy as liburing's test_allow_inet_only)
        ld [socket.family]          ; A = family (SQE fd field)
        jeq #AF_INET, allow, deny
allow:  ret ALLOW
deny:   ret DENY
