"""SSH from the wire up (RFC 4253 transport; RFC 4252 and 4254 to come): sans-I/O, like :mod:`handshake_lib.tls`.

The transport, bottom up: ``version`` (the identification lines), ``packet`` (the binary packet protocol
and sequence numbers), ``protection`` (ciphers and MACs per direction), ``constants`` and ``messages``
(message numbers and the transport messages, mirrored decode/encode with spans), ``negotiation``
(picking algorithms from two KEXINITs), ``kex`` (the key exchange methods), ``exchange_hash`` (H and
its inputs), ``kdf`` (keys A..F), ``hostkeys``, ``fingerprints`` and ``known_hosts`` (the server's
identity and whether we trust it).  ``states`` holds the tables, ``connection`` the core both roles
share, ``client`` and ``server`` their rows' handlers, ``stages`` what a learner can replace.
``handshake_lib.net.ssh`` runs them over sockets.
"""
