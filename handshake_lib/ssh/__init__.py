"""SSH from the wire up (RFC 4253 transport; RFC 4252 and 4254 to come): sans-I/O, like :mod:`handshake_lib.tls`.

Modules: ``version`` (the identification strings), ``packet`` (the binary packet protocol and sequence
numbers), ``protection`` (ciphers and MACs per direction), ``constants`` and ``messages`` (message numbers
and the transport messages, mirrored decode/encode with spans), ``negotiation`` (picking algorithms from
two KEXINITs), ``kex`` (the key exchange methods and the exchange hash), ``kdf`` (keys A..F), ``hostkeys``,
``fingerprints`` and ``known_hosts`` (the server's identity).
"""
